"""The bots and their languages, from `languages.yml`, loaded once into typed objects.

A bot id is valid iff it is a key of the file; the file's order is the order of valid values in API
errors. The `duoniche.E001` system check refuses to start with a malformed file.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cyrtranslit
import yaml
from django.conf import settings

from duoniche.enums import Alphabet, ExerciseTopic, ExerciseType

SCRIPTS = ("cyrillic", "latin")
_KEYS = {
    "language_code",
    "tts_locale",
    "generation_script",
    "display_alphabets",
    "excluded_topics",
    "excluded_types",
    "type_distribution",
}
#: Keys a language may leave out (the language check: docs/language-check.md).
_OPTIONAL_KEYS = {"dictionaries", "neighbour_dictionaries", "neighbour_words", "ekavian"}


class LanguageConfigError(ValueError):
    """The languages file is malformed; `problems` lists every issue found."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Language:
    bot_id: str
    language_code: str
    tts_locale: str
    generation_script: str
    display_alphabets: tuple[str, ...]
    excluded_topics: frozenset[str]
    excluded_types: frozenset[str]
    type_distribution: dict[str, float]
    #: Hunspell dictionary names by script: the language's own words.
    dictionaries: dict[str, str] = field(default_factory=dict)
    #: Hunspell dictionary names by language code: close languages whose words must not leak in.
    neighbour_dictionaries: dict[str, str] = field(default_factory=dict)
    #: A word list (file name in exercises/language_data/) of neighbours' forms, one per line.
    neighbour_words: str = ""
    #: Whether the standard is ekavian: ijekavian forms are then a neighbour's.
    ekavian: bool = False

    @property
    def default_alphabet(self) -> str:
        return self.display_alphabets[0]

    @property
    def generated_types(self) -> tuple[str, ...]:
        """Exercise types this language has, in enum order (generation, import, selection)."""
        return tuple(t for t in ExerciseType.values if t not in self.excluded_types)


def _str_list(value: Any, where: str, allowed: list[str], problems: list[str]) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(f"{where} must be a list of strings")
        return []
    for item in value:
        if item not in allowed:
            problems.append(f"{where}: unknown value {item!r}")
    return list(value)


def _parse_language(bot_id: Any, spec: Any, problems: list[str]) -> Language | None:
    if not isinstance(bot_id, str) or not bot_id or len(bot_id) > 50:
        problems.append(f"bot id {bot_id!r} must be a non-empty string of at most 50 characters")
        return None
    if not isinstance(spec, dict):
        problems.append(f"{bot_id} must be a mapping")
        return None
    before = len(problems)
    missing = sorted(_KEYS - spec.keys())
    unknown = sorted(spec.keys() - _KEYS - _OPTIONAL_KEYS)
    if missing:
        problems.append(f"{bot_id}: missing keys {', '.join(missing)}")
    if unknown:
        problems.append(f"{bot_id}: unknown keys {', '.join(map(str, unknown))}")
    if missing:
        return None
    for key in ("language_code", "tts_locale"):
        if not isinstance(spec[key], str) or not spec[key]:
            problems.append(f"{bot_id}.{key} must be a non-empty string")
    if spec["generation_script"] not in SCRIPTS:
        problems.append(f"{bot_id}.generation_script must be one of {', '.join(SCRIPTS)}")
    alphabets = _str_list(
        spec["display_alphabets"], f"{bot_id}.display_alphabets", Alphabet.values, problems
    )
    if not alphabets:
        problems.append(f"{bot_id}.display_alphabets must name at least one alphabet")
    topics = _str_list(
        spec["excluded_topics"], f"{bot_id}.excluded_topics", ExerciseTopic.values, problems
    )
    types = _str_list(
        spec["excluded_types"], f"{bot_id}.excluded_types", ExerciseType.values, problems
    )
    distribution = spec["type_distribution"]
    if not isinstance(distribution, dict) or not distribution:
        problems.append(f"{bot_id}.type_distribution must be a non-empty mapping")
        distribution = {}
    for type_name, weight in distribution.items():
        if type_name not in ExerciseType.values:
            problems.append(f"{bot_id}.type_distribution: unknown type {type_name!r}")
        elif type_name in types:
            problems.append(f"{bot_id}.type_distribution: {type_name} is excluded")
        if isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0:
            problems.append(f"{bot_id}.type_distribution.{type_name} must be a number >= 0")
    dictionaries = _name_map(spec.get("dictionaries", {}), f"{bot_id}.dictionaries", problems)
    for script in dictionaries:
        if script not in SCRIPTS:
            problems.append(f"{bot_id}.dictionaries: unknown script {script!r}")
    neighbours = _name_map(
        spec.get("neighbour_dictionaries", {}), f"{bot_id}.neighbour_dictionaries", problems
    )
    neighbour_words = spec.get("neighbour_words", "")
    if not isinstance(neighbour_words, str) or "/" in neighbour_words:
        problems.append(f"{bot_id}.neighbour_words must be a file name")
    if not isinstance(spec.get("ekavian", False), bool):
        problems.append(f"{bot_id}.ekavian must be true or false")
    if len(problems) > before:
        return None
    return Language(
        bot_id=bot_id,
        language_code=spec["language_code"],
        tts_locale=spec["tts_locale"],
        generation_script=spec["generation_script"],
        display_alphabets=tuple(alphabets),
        excluded_topics=frozenset(topics),
        excluded_types=frozenset(types),
        type_distribution={name: float(weight) for name, weight in distribution.items()},
        dictionaries=dictionaries,
        neighbour_dictionaries=neighbours,
        neighbour_words=neighbour_words,
        ekavian=spec.get("ekavian", False),
    )


def _name_map(value: Any, where: str, problems: list[str]) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v and "/" not in v for k, v in value.items()
    ):
        problems.append(f"{where} must map names to dictionary names")
        return {}
    return dict(value)


def load_languages(path: Path) -> dict[str, Language]:
    """Read and validate a languages file; raise `LanguageConfigError` listing every problem."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise LanguageConfigError([f"cannot read {path.name}: {exc.__class__.__name__}"]) from exc
    if not isinstance(raw, dict) or not raw:
        raise LanguageConfigError([f"{path.name} must map bot ids to their settings"])
    problems: list[str] = []
    languages = {}
    for bot_id, spec in raw.items():
        language = _parse_language(bot_id, spec, problems)
        if language is not None:
            languages[language.bot_id] = language
    if problems:
        raise LanguageConfigError(problems)
    return languages


@functools.cache
def _configured(path: str) -> dict[str, Language]:
    return load_languages(Path(path))


def languages() -> dict[str, Language]:
    """All configured languages by bot id, in file order (loaded once per file)."""
    return _configured(str(settings.LANGUAGES_FILE))


def bot_ids() -> tuple[str, ...]:
    return tuple(languages())


def get_language(bot_id: str) -> Language | None:
    return languages().get(bot_id)


def is_bot_id(value: str) -> bool:
    return value in languages()


def latin_to_cyrillic(text: str) -> str:
    """Serbian Latin → Cyrillic (display for Cyrillic-alphabet profiles)."""
    return str(cyrtranslit.to_cyrillic(text, "sr"))


def cyrillic_to_latin(text: str) -> str:
    """Serbian Cyrillic → Latin (how answers are matched and stored)."""
    return str(cyrtranslit.to_latin(text, "sr"))


def shows_cyrillic(language: Language, alphabet: str | None) -> bool:
    """Whether a profile with this alphabet setting sees this Latin-script language in Cyrillic."""
    return (
        language.generation_script == "latin"
        and alphabet == "cyrillic"
        and "cyrillic" in language.display_alphabets
    )
