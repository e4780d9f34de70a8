"""The Hunspell boundary: dictionaries loaded once per process, and whether each language has its.

The dictionaries are Debian's (`hunspell-bg`, `hunspell-sr`, ...), found in `HUNSPELL_DIRS`; the
binding is pyhunspell (`hunspell` on PyPI, a C extension over libhunspell). Nothing here raises
when either is missing: the language's check is reported disabled (`/healthz` features, the
`duoniche.W009` system check) and skipped.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import Any, Protocol

from django.conf import settings

from duoniche.languages import Language, languages


class Speller(Protocol):
    def spell(self, word: str) -> bool: ...

    def __hash__(self) -> int: ...


@functools.cache
def _binding() -> Any:
    try:
        import hunspell
    except ImportError:
        return None
    return hunspell


def _dictionary_files(name: str) -> tuple[Path, Path] | None:
    for folder in settings.HUNSPELL_DIRS:
        dic, aff = Path(folder) / f"{name}.dic", Path(folder) / f"{name}.aff"
        if dic.is_file() and aff.is_file():
            return dic, aff
    return None


_LOADED: dict[tuple[str, tuple[str, ...]], Speller | None] = {}
#: Held while a dictionary loads: the generation's threads ask for the same dictionaries at once,
#: and each would otherwise load its own copy (a tenth of a second of CPU each).
_LOADING = threading.Lock()


def speller(name: str) -> Speller | None:
    """The loaded dictionary `name` (once per process), or None when it cannot be loaded."""
    key = (name, tuple(settings.HUNSPELL_DIRS))
    if key in _LOADED:
        return _LOADED[key]
    with _LOADING:
        if key not in _LOADED:
            binding = _binding()
            files = _dictionary_files(name)
            _LOADED[key] = (
                None if binding is None or files is None else binding.HunSpell(*map(str, files))
            )
    return _LOADED[key]


def missing_parts(language: Language) -> list[str]:
    """What the language's check lacks (empty: it runs); nothing configured counts as missing."""
    if not settings.LANGUAGE_CHECK:
        return ["LANGUAGE_CHECK is off"]
    if not language.dictionaries:
        return ["no dictionaries configured"]
    if _binding() is None:
        return ["the hunspell Python binding"]
    names = [*language.dictionaries.values(), *language.neighbour_dictionaries.values()]
    return [f"{name}.dic" for name in names if _dictionary_files(name) is None]


def status(languages: list[Language]) -> dict[str, str]:
    """Per bot id: `enabled`, or `disabled (<what is missing>)`."""
    result = {}
    for language in languages:
        missing = missing_parts(language)
        result[language.bot_id] = f"disabled ({', '.join(missing)})" if missing else "enabled"
    return result


def feature() -> str:
    """`/healthz`'s value: `enabled` when every language is checked, `disabled` when none is,
    else `partial` (`manage.py check` names what is missing)."""
    return _feature(settings.LANGUAGE_CHECK, tuple(settings.HUNSPELL_DIRS))


@functools.cache
def _feature(enabled: bool, folders: tuple[str, ...]) -> str:
    checked = [not missing_parts(language) for language in languages().values()]
    if all(checked):
        return "enabled"
    return "partial" if any(checked) else "disabled"


#: libhunspell does not promise that one dictionary may be asked from two threads at once (the
#: generation runs several in a worker); a miss of the cache below takes microseconds.
_LOCK = threading.Lock()


@functools.lru_cache(maxsize=200_000)
def _spell_cached(dictionary: Speller, word: str) -> bool:
    with _LOCK:
        return bool(dictionary.spell(word))


def spell(dictionary: Speller, word: str) -> bool:
    try:
        return _spell_cached(dictionary, word)
    except UnicodeError:
        return False  # a lone surrogate or a letter the dictionary's encoding lacks
