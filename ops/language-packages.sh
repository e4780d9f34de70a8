#!/usr/bin/env bash
# The language check's system parts (docs/language-check.md): Debian's Hunspell dictionaries for
# Bulgarian, Serbian and their neighbours, and the Hunspell library the Python binding builds on.
# Installs them with apt-get when they are missing and this user may (root, or sudo without a
# password); otherwise it says what to install and exits 0: the check then reports itself
# disabled, and everything else works. Usage: ops/language-packages.sh [VENV_PIP]
# With VENV_PIP, it also installs the binding (requirements-language.txt) into that virtualenv.
set -uo pipefail
cd "$(dirname "$0")/.."

packages="libhunspell-dev hunspell-bg hunspell-sr hunspell-ru hunspell-hr hunspell-bs"
dictionaries="bg_BG sr_Latn_RS sr_RS ru_RU hr_HR bs_BA"
folder=/usr/share/hunspell

missing=""
for name in $dictionaries; do [ -f "$folder/$name.dic" ] || missing="yes"; done
[ -f /usr/include/hunspell/hunspell.h ] || missing="yes"

if [ -n "$missing" ] && command -v apt-get >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then sudo=""; elif sudo -n true 2>/dev/null; then sudo="sudo -n"; else sudo="no"; fi
  if [ "$sudo" != "no" ]; then
    echo "installing $packages"
    $sudo apt-get update -qq \
      && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $packages \
      >/dev/null || echo "apt-get could not install them"
  fi
fi

if [ ! -f /usr/include/hunspell/hunspell.h ]; then
  echo "language check disabled: install the Hunspell library headers and dictionaries"
  echo "  (Debian/Ubuntu: apt-get install $packages; macOS: brew install hunspell and set HUNSPELL_DIRS)"
  exit 0
fi
if [ $# -ge 1 ]; then
  pip="$1"
  "$pip" install --quiet -r requirements-language.txt -c constraints.txt \
    || echo "language check disabled: the hunspell binding did not build"
fi
exit 0
