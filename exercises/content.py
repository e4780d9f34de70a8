"""Exercise content rules shared by import, generation, validation and the admin.

Text normalisation, the canonical answer text, the content hash (natural key) and script checks.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from typing import Any

from duoniche.enums import ExerciseType

BLANK = "___"
STRESS_MARK = "\u0300"
STRESSABLE_VOWELS = frozenset("аеиоуъюяАЕИОУЪЮЯ")

_WHITESPACE_RUN = re.compile(r"\s+")
_UNDERSCORE_RUN = re.compile(r"_{2,}")


def normalize_text(value: str) -> str:
    """Unicode NFC, trimmed, every internal whitespace run collapsed to one space."""
    return _WHITESPACE_RUN.sub(" ", unicodedata.normalize("NFC", value)).strip()


def normalize_blanks(text: str) -> str:
    """`normalize_text`, plus every run of two or more underscores becomes the blank `___`."""
    return _UNDERSCORE_RUN.sub(BLANK, normalize_text(text))


def text_hash(value: str) -> str:
    """SHA-256 hex of a text (UTF-8): the key of canonical answer texts."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def answer_text(exercise_type: str, answer: dict[str, Any]) -> str:
    """Canonical answer text: fill words joined with `;`, otherwise the chosen option."""
    if exercise_type == ExerciseType.FILL_IN_THE_BLANK:
        return ";".join(answer["words"])
    return str(answer["answer"])


def correct_content(exercise_type: str, correct_answer: dict[str, Any]) -> Any:
    if exercise_type == ExerciseType.FILL_IN_THE_BLANK:
        return list(correct_answer["words"])
    return correct_answer["answer"]


def content_hash(
    *, exercise_type: str, exercise_language: str, data: dict[str, Any], correct_answer: Any
) -> str:
    """The natural key of an exercise (docs/exercise-bank.md); inputs already normalised.

    Option and distractor order do not change it; level, topic, tags, status, persona, the accent
    meaning and the story audio fields are not part of it.
    """
    correct = correct_content(exercise_type, correct_answer)
    if exercise_type == ExerciseType.FILL_IN_THE_BLANK:
        content: dict[str, Any] = {
            "text_with_blanks": data["text_with_blanks"],
            "words": sorted(set(data["words"])),
            "correct": correct,
        }
    elif exercise_type == ExerciseType.STORY_COMPREHENSION:
        content = {
            "content_text": data["content_text"],
            "options": sorted(set(data["options"])),
            "correct": correct,
        }
    else:
        content = {"options": sorted(set(data["options"])), "correct": correct}
    canonical = json.dumps(
        {
            "v": 1,
            "exercise_type": exercise_type,
            "exercise_language": exercise_language,
            "content": content,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return text_hash(canonical)


def uses_only_script(text: str, script: str) -> bool:
    """Whether every letter of `text` belongs to `script` (`cyrillic` or `latin`)."""
    marker = script.upper()
    return all(marker in unicodedata.name(ch, "") for ch in text if ch.isalpha())


def stress_problem(option: str) -> str | None:
    """Why `option` is not a word with exactly one stress mark after a vowel (None if it is)."""
    decomposed = unicodedata.normalize("NFD", option)
    positions = [i for i, ch in enumerate(decomposed) if ch == STRESS_MARK]
    if len(positions) != 1:
        return "must contain exactly one stress mark (U+0300)"
    if positions[0] == 0 or decomposed[positions[0] - 1] not in STRESSABLE_VOWELS:
        return "the stress mark must follow a vowel"
    return None


def without_stress(option: str) -> str:
    return unicodedata.normalize("NFD", option).replace(STRESS_MARK, "")


#: The `data` keys sent to the bots per type (e.g. the accent `meaning` stays server-side).
PUBLIC_DATA_KEYS: dict[str, tuple[str, ...]] = {
    ExerciseType.FILL_IN_THE_BLANK: ("text_with_blanks", "words"),
    ExerciseType.CHOOSE_SENTENCE: ("options",),
    ExerciseType.CHOOSE_ACCENT: ("options",),
    ExerciseType.STORY_COMPREHENSION: (
        "content_text",
        "audio_url",
        "audio_telegram_file_id",
        "options",
    ),
}
#: Of those, the learner-visible texts (transliterated for Serbian Cyrillic readers).
TEXT_DATA_KEYS = ("text_with_blanks", "words", "options", "content_text")


def public_data(exercise_type: str, data: dict[str, Any]) -> dict[str, Any]:
    return {key: data.get(key) for key in PUBLIC_DATA_KEYS[exercise_type]}


def map_texts(data: dict[str, Any], convert: Any) -> dict[str, Any]:
    """`data` with `convert` applied to every learner-visible text (strings and string lists)."""
    result = dict(data)
    for key in TEXT_DATA_KEYS:
        value = result.get(key)
        if isinstance(value, str):
            result[key] = convert(value)
        elif isinstance(value, list):
            result[key] = [convert(item) for item in value]
    return result
