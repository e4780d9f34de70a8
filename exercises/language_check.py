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

import dataclasses
import functools
import logging
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cyrtranslit

from duoniche.dictionaries import Speller, missing_parts, spell, speller
from duoniche.enums import ExerciseType
from duoniche.languages import Language, cyrillic_to_latin, get_language, latin_to_cyrillic
from exercises.content import map_texts, without_stress

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
    #: Set when the word is as learners see it in another script (Serbian Cyrillic): a word
    #: known in the stored script but not after transliteration.
    shown_in: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "word": self.word,
            "field": self.field,
            "start": self.start,
            "end": self.end,
            "origin": self.origin,
            "shown_in": self.shown_in,
        }


@functools.cache
def _word_list(name: str) -> dict[str, str]:
    """A neighbour word list: `word language-code` per line, `#` comments."""
    words: dict[str, str] = {}
    for line in (DATA_DIR / name).read_text(encoding="utf-8").splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) >= 2:
            words[fields[0].lower()] = fields[1]
    return words


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
        return own is not None and spell(own, word)

    def _known_in_other_script(self, word: str, script: str) -> bool:
        code = self.language.language_code
        return any(
            spell(dictionary, _in_script(word, other, code))
            for other, dictionary in self.own.items()
            if other != script
        )

    def _neighbour_of(self, word: str) -> str:
        """The neighbour language code whose dictionary knows `word` ("" when none does)."""
        code = self.language.language_code
        for neighbour, dictionary in self.neighbours.items():
            script = self.language.generation_script
            if spell(dictionary, _in_script(word, script, code)):
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
        # An ekavian form the language knows and a neighbour lacks: the neighbours' dictionaries
        # list some ekavian forms too (bs_BA has vreme), and some are homographs (hr svet "holy").
        for form in _ekavian_forms(latin):
            if self._knows("latin", form) and not all(
                spell(dictionary, form) for dictionary in self.neighbours.values()
            ):
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
        if self._known_in_other_script(word.bare, script):
            return UNKNOWN_WORD, ""  # e.g. a transliteration that broke a right word
        neighbour = self._neighbour_of(word.bare)
        if neighbour:
            return FOREIGN_WORD, neighbour
        if _is_name(word):
            return "", ""
        return UNKNOWN_WORD, ""


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


def lint_exercise(
    *, exercise_type: str, exercise_language: str, data: dict[str, Any]
) -> list[Finding] | None:
    """`check_exercise`, plus for Serbian the Cyrillic text learners are shown: a word that is
    right in Latin but unknown once transliterated is the transliteration's fault (`shown_in`)."""
    found = check_exercise(
        exercise_type=exercise_type, exercise_language=exercise_language, data=data
    )
    language = get_language(exercise_language)
    if found is None or language is None or language.language_code != "sr":
        return found
    shown = [s for s in language.display_alphabets if s != language.generation_script]
    flagged = {(f.field, f.word) for f in found}
    for script in shown:
        rendered = map_texts(data, latin_to_cyrillic)
        for finding in (
            check_exercise(
                exercise_type=exercise_type,
                exercise_language=exercise_language,
                data=rendered,
                script=script,
            )
            or []
        ):
            if (finding.field, cyrillic_to_latin(finding.word)) not in flagged:
                found.append(dataclasses.replace(finding, shown_in=script))
    return found
