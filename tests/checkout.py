"""A copy of this checkout as a clean clone would have it, for tests and benches that run `make`.

The copy holds the files git tracks or would commit (no `.env`, `.local`, caches) with their
modification times, and shares this checkout's `.venv` through a link: `make` finds nothing to
install, so what is measured or tested is DuoNiche, not pip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def copy_checkout(target: Path) -> Path:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    (target / ".venv").symlink_to((ROOT / ".venv").resolve())
    return target


def clean_env() -> dict[str, str]:
    """Only PATH, HOME and the locale of this process's environment: nothing configured."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
    return {key: os.environ[key] for key in keep if key in os.environ}
