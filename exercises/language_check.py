"""The language check: exercise texts against Hunspell dictionaries, without an LLM.

Every word of every learner-visible text (sentence, options, fill words, story) is looked up in
the dictionary of the language for its script (`languages.yml` `dictionaries`). A finding is one
of four kinds:

- `unknown_word`: no dictionary of the language knows it (and no neighbour's either);
- `foreign_word`: a neighbour language's dictionary knows it and the language's does not (Russian
  in Bulgarian), or it is a neighbour's form the language's dictionary also lists (Croatian words
  and ijekavian forms in ekavian Serbian: `neighbour_words` and the `ekavian` rule);
- `wrong_script`: a word in the other script (Latin inside Cyrillic Bulgarian);
- `mixed_script`: Cyrillic and Latin letters inside one word.

Allowed: numbers, the blank `___`, stress marks, capitalised words that do not start a sentence
(proper names) and all-capital abbreviations. When the binding or a dictionary is missing, the
language's check is disabled (`status()`), never an error. docs/language-check.md has the rules.
"""

from __future__ import annotations

import functools
import logging
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cyrtranslit
from django.conf import settings

from duoniche.enums import ExerciseType
from duoniche.languages import Language, get_language
from exercises.content import without_stress

logger = logging.getLogger(__name__)

UNKNOWN_WORD = "unknown_word"
FOREIGN_WORD = "foreign_word"
WRONG_SCRIPT = "wrong_script"
MIXED_SCRIPT = "mixed_script"
KINDS = (UNKNOWN_WORD, FOREIGN_WORD, WRONG_SCRIPT, MIXED_SCRIPT)
#: What `foreign_word` names when the form, not a dictionary, gives the word away.
IJEKAVIAN = "ijekavian"

DATA_DIR = Path(__file__).resolve().parent / "language_data"

_LETTER = r"[^\W\d_]"
_MARK = r"[\u0300-\u036f]"
_WORD = re.compile(rf"{_LETTER}(?:{_LETTER}|{_MARK})*(?:['’-]{_LETTER}(?:{_LETTER}|{_MARK})*)*")
#: Characters that may stand between a sentence's end and its next word.
_OPENERS = " \t\n\"'«»„“”‘’()[]—–-"
_SENTENCE_ENDS = ".!?…"
#: The longest all-capital word taken for an abbreviation.
MAX_ABBREVIATION = 5


class Speller(Protocol):
    def spell(self, word: str) -> bool: ...

    def __hash__(self) -> int: ...


@dataclass(frozen=True)
class Finding:
    """One offending word: where it is (`field`, a character span of that text) and why."""

    kind: str
    word: str
    field: str
    start: int
    end: int
    #: For `foreign_word`: the language code it belongs to, or `ijekavian`.
    origin: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "word": self.word,
            "field": self.field,
            "start": self.start,
            "end": self.end,
            "origin": self.origin,
        }


# --- dictionaries -------------------------------------------------------------------------------


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


@functools.cache
def _speller(name: str, folders: tuple[str, ...]) -> Speller | None:
    binding = _binding()
    files = _dictionary_files(name)
    if binding is None or files is None:
        return None
    dic, aff = files
    return binding.HunSpell(str(dic), str(aff))


def speller(name: str) -> Speller | None:
    """The loaded dictionary `name` (once per process), or None when it cannot be loaded."""
    return _speller(name, tuple(settings.HUNSPELL_DIRS))


@functools.cache
def _word_list(name: str) -> dict[str, str]:
    """A neighbour word list: `word language-code` per line, `#` comments."""
    words: dict[str, str] = {}
    for line in (DATA_DIR / name).read_text(encoding="utf-8").splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) >= 2:
            words[fields[0].lower()] = fields[1]
    return words


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


# --- words --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Word:
    text: str  # as written
    bare: str  # stress marks removed, NFC
    start: int
    end: int
    starts_sentence: bool


def words_of(text: str) -> Iterator[Word]:
    """The words of `text` (NFC expected), with their spans; numbers and `___` are not words."""
    for match in _WORD.finditer(text):
        before = text[: match.start()].rstrip(_OPENERS)
        bare = unicodedata.normalize("NFC", without_stress(match.group()))
        yield Word(
            text=match.group(),
            bare=bare,
            start=match.start(),
            end=match.end(),
            starts_sentence=not before or before[-1] in _SENTENCE_ENDS,
        )


def script_of(word: str) -> str:
    """`cyrillic`, `latin`, `mixed`, or `other` by the word's letters."""
    scripts = set()
    for ch in word:
        if ch.isalpha():
            name = unicodedata.name(ch, "")
            scripts.add(
                "cyrillic" if "CYRILLIC" in name else "latin" if "LATIN" in name else "other"
            )
    if len(scripts) > 1:
        return "mixed"
    return scripts.pop() if scripts else "other"


def _in_script(word: str, script: str, language_code: str) -> str:
    """`word` written in `script` (cyrtranslit), for a lookup in a dictionary of that script."""
    current = script_of(word)
    if current == script or current not in ("cyrillic", "latin"):
        return word
    try:
        if script == "latin":
            return str(cyrtranslit.to_latin(word, language_code))
        return str(cyrtranslit.to_cyrillic(word, language_code))
    except (KeyError, ValueError):
        return word


def _is_name(word: Word) -> bool:
    first = word.bare[:1]
    if word.bare.isupper() and len(word.bare) <= MAX_ABBREVIATION:
        return True
    return first.isupper() and not word.starts_sentence


# --- the checker --------------------------------------------------------------------------------

#: Ijekavian reflexes of yat, each with its ekavian form. (The ijekavian -io of verbs such as
#: vidio is not a rule: bio and zakasnio are ekavian too; the word list names the common ones.)
_YAT = (("ije", "e"), ("je", "e"))
_CONSONANTS = frozenset("bcčćdđfghjklmnprsštvzž")


def _ekavian_forms(word: str) -> set[str]:
    """The ekavian forms `word` would have if one of its yat reflexes were ijekavian."""
    forms = set()
    for ijekavian, ekavian in _YAT:
        start = word.find(ijekavian, 1)
        while start > 0:
            if word[start - 1] in _CONSONANTS:
                forms.add(word[:start] + ekavian + word[start + len(ijekavian) :])
            start = word.find(ijekavian, start + 1)
    return forms


@dataclass(frozen=True)
class Checker:
    """The loaded dictionaries of one language; `findings` checks one text."""

    language: Language
    own: dict[str, Speller]
    neighbours: dict[str, Speller]
    neighbour_words: dict[str, str]

    def _knows(self, script: str, word: str) -> bool:
        own = self.own.get(script)
        return own is not None and _spell(own, word)

    def _neighbour_of(self, word: str) -> str:
        """The neighbour language code whose dictionary knows `word` ("" when none does)."""
        code = self.language.language_code
        for neighbour, dictionary in self.neighbours.items():
            script = self.language.generation_script
            if _spell(dictionary, _in_script(word, script, code)):
                return neighbour
        return ""

    def _known_foreign(self, word: str) -> str:
        """For a word the language knows: the neighbour whose form it is ("" when none)."""
        latin = _in_script(word, "latin", self.language.language_code).lower()
        listed = self.neighbour_words.get(latin)
        if listed:
            return listed
        if not self.language.ekavian or not self._neighbour_of(latin):
            return ""
        for form in _ekavian_forms(latin):
            if self._knows("latin", form) and not self._neighbour_of(form):
                return IJEKAVIAN
        return ""

    def findings(self, text: str, field: str, script: str) -> list[Finding]:
        """The findings of one text expected in `script` (the language's own or its other one)."""
        found = []
        for word in words_of(text):
            kind, origin = self._judge(word, script)
            if kind:
                found.append(Finding(kind, word.text, field, word.start, word.end, origin))
        return found

    def _judge(self, word: Word, script: str) -> tuple[str, str]:
        word_script = script_of(word.bare)
        if word_script == "mixed":
            return MIXED_SCRIPT, ""
        if word_script != script:
            return (WRONG_SCRIPT, "") if word_script in ("cyrillic", "latin") else ("", "")
        if self._knows(script, word.bare):
            foreign = self._known_foreign(word.bare)
            return (FOREIGN_WORD, foreign) if foreign else ("", "")
        if "-" in word.bare and all(
            self._knows(script, part) for part in word.bare.split("-") if part
        ):
            return "", ""
        neighbour = self._neighbour_of(word.bare)
        if neighbour:
            return FOREIGN_WORD, neighbour
        if _is_name(word):
            return "", ""
        return UNKNOWN_WORD, ""


@functools.lru_cache(maxsize=200_000)
def _spell_cached(dictionary: Speller, word: str) -> bool:
    return bool(dictionary.spell(word))


def _spell(dictionary: Speller, word: str) -> bool:
    try:
        return _spell_cached(dictionary, word)
    except UnicodeError:
        return False  # a lone surrogate or a letter the dictionary's encoding lacks


def checker(bot_id: str) -> Checker | None:
    """The language's checker, or None when the check is disabled for it (`missing_parts`)."""
    language = get_language(bot_id)
    if language is None or missing_parts(language):
        return None
    own = {script: speller(name) for script, name in language.dictionaries.items()}
    neighbours = {code: speller(name) for code, name in language.neighbour_dictionaries.items()}
    if any(value is None for value in [*own.values(), *neighbours.values()]):
        return None
    return Checker(
        language=language,
        own={k: v for k, v in own.items() if v is not None},
        neighbours={k: v for k, v in neighbours.items() if v is not None},
        neighbour_words=_word_list(language.neighbour_words) if language.neighbour_words else {},
    )


# --- exercises ----------------------------------------------------------------------------------


def exercise_texts(exercise_type: str, data: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(field, text) of every learner-visible text of an exercise's data."""
    keys = ["text_with_blanks", "words"] if exercise_type == ExerciseType.FILL_IN_THE_BLANK else []
    if exercise_type == ExerciseType.STORY_COMPREHENSION:
        keys.append("content_text")
    if exercise_type != ExerciseType.FILL_IN_THE_BLANK:
        keys.append("options")
    for key in keys:
        value = data.get(key)
        if isinstance(value, str):
            yield key, value
        elif isinstance(value, list):
            for position, item in enumerate(value):
                if isinstance(item, str):
                    yield f"{key}[{position}]", item


def check_exercise(
    *, exercise_type: str, exercise_language: str, data: dict[str, Any], script: str = ""
) -> list[Finding] | None:
    """Findings of an exercise's texts, read in `script` (default: the language's own script);
    None when the check is disabled for the language."""
    check = checker(exercise_language)
    if check is None:
        return None
    script = script or check.language.generation_script
    found = []
    for field, text in exercise_texts(exercise_type, data):
        found.extend(check.findings(unicodedata.normalize("NFC", text), field, script))
    return found


def issue_codes(findings: list[Finding]) -> list[str]:
    """One issue per kind, in `KINDS` order: `<kind>:<word>, <word>` (each word once)."""
    issues = []
    for kind in KINDS:
        words = list(dict.fromkeys(f.word for f in findings if f.kind == kind))
        if words:
            issues.append(f"{kind}:{', '.join(words)}")
    return issues
