"""Submitted answers: normalisation, option membership and the verdict texts built from them.

An answer must be one of the exercise's own options or words: after normalisation each
submitted value is replaced by the stored option it matched, so every learner who picks the same
option produces the same canonical answer, whatever the script or spacing. That canonical answer is
what the verdict cache, the LLM prompts and the attempt's `answer_text` use.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from duoniche.enums import ExerciseType
from duoniche.languages import cyrillic_to_latin, get_language, latin_to_cyrillic
from duoniche.telegram_html import clean_telegram_html
from exercises.content import BLANK, answer_text, normalize_text, text_hash

CORRECT_MARK = "✅"
_CODE_BLOCK = re.compile(r"<code>(.*?)</code>", re.DOTALL)
_TAG = re.compile(r"(<[^>]*>)")


class AnswerShapeError(ValueError):
    """The answer object does not fit the exercise type (fill needs `words`, choose `answer`)."""


class AnswerNotInOptions(ValueError):
    """A submitted value is not one of the exercise's options or words."""


@dataclass(frozen=True)
class CanonicalAnswer:
    """An answer after membership matching: stored option strings, their text and its key."""

    answer: dict[str, Any]
    text: str
    key: str


def uses_latin_storage(exercise_language: str) -> bool:
    """Whether the language is stored in Latin and may be answered in Cyrillic (Serbian)."""
    language = get_language(exercise_language)
    return language is not None and language.generation_script == "latin"


def normalize_answer(value: str, *, exercise_language: str) -> str:
    """NFC, trimmed, whitespace runs collapsed; for Serbian, Cyrillic transliterated to Latin."""
    value = normalize_text(value)
    if uses_latin_storage(exercise_language):
        value = cyrillic_to_latin(value)
    return value


def _match(value: str, options: Iterable[str], *, exercise_language: str) -> str:
    """The stored option that the submitted `value` designates."""
    submitted = normalize_answer(value, exercise_language=exercise_language)
    round_trip = uses_latin_storage(exercise_language)
    for option in options:
        stored = normalize_answer(option, exercise_language=exercise_language)
        if submitted == stored:
            return option
        # Latin → Cyrillic → Latin absorbs the digraph ambiguities of the transliteration.
        if round_trip and submitted == cyrillic_to_latin(latin_to_cyrillic(stored)):
            return option
    raise AnswerNotInOptions


def canonical_answer(
    *, exercise_type: str, exercise_language: str, data: dict[str, Any], submitted: dict[str, Any]
) -> CanonicalAnswer:
    """Match a submitted answer object against the exercise's options.

    `submitted` is `{"words": [...]}` or `{"answer": "..."}` (other keys ignored). Raises
    `AnswerShapeError` when the shape does not fit the type and `AnswerNotInOptions` when a value
    is not one of the exercise's words/options.
    """
    if exercise_type == ExerciseType.FILL_IN_THE_BLANK:
        words = submitted.get("words")
        if not isinstance(words, list) or not all(isinstance(word, str) for word in words):
            raise AnswerShapeError
        options = [str(word) for word in data.get("words") or []]
        canonical: dict[str, Any] = {
            "words": [_match(word, options, exercise_language=exercise_language) for word in words]
        }
    else:
        value = submitted.get("answer")
        if not isinstance(value, str) or "words" in submitted:
            raise AnswerShapeError
        options = [str(option) for option in data.get("options") or []]
        canonical = {"answer": _match(value, options, exercise_language=exercise_language)}
    text = answer_text(exercise_type, canonical)
    return CanonicalAnswer(answer=canonical, text=text, key=text_hash(text))


def answered_text(text_with_blanks: str, words: list[str]) -> str:
    """The fill sentence with `words` in its blanks (surplus words dropped, missing ones empty)."""
    if not words or BLANK not in text_with_blanks:
        return text_with_blanks
    pieces = [piece.replace("_", "") for piece in text_with_blanks.split(BLANK)]
    result = pieces[0]
    for index, piece in enumerate(pieces[1:]):
        result += (words[index] if index < len(words) else "") + piece
    return result


def answered_exercise_text(
    *, exercise_type: str, data: dict[str, Any], answer: dict[str, Any]
) -> str:
    """The sentence as the learner completed it (fill) or the chosen string (choose types)."""
    if exercise_type == ExerciseType.FILL_IN_THE_BLANK:
        return answered_text(str(data.get("text_with_blanks") or ""), list(answer["words"]))
    return str(answer["answer"])


def code(text: str) -> str:
    return f"<code>{html.escape(text, quote=False)}</code>"


def correct_answers_feedback(correct_texts: list[str], meaning: str | None = None) -> str:
    """`✅` + every correct answer in `<code>`, then the accent meaning after a blank line.

    Stored in the exercise's script (Latin for Serbian); Cyrillic readers get the `<code>` parts
    transliterated at response time (`for_display`).
    """
    feedback = f"{CORRECT_MARK} " + ", ".join(code(text) for text in correct_texts)
    if meaning:
        feedback += f"\n\n{meaning}"
    return feedback


def automatic_feedback(
    *, exercise_type: str, data: dict[str, Any], correct_texts: list[str]
) -> str:
    """Feedback of an automatic verdict (accent, story): the correct answers, the accent meaning."""
    meaning = data.get("meaning") if exercise_type == ExerciseType.CHOOSE_ACCENT else None
    return correct_answers_feedback(
        correct_texts, clean_telegram_html(str(meaning)) if meaning else None
    )


def deterministic_feedback(
    *, exercise_type: str, data: dict[str, Any], reference: dict[str, Any]
) -> str:
    """Feedback of the no-LLM verdict for a wrong answer: the reference answer in `<code>`.

    For fill-in-the-blank it is the whole sentence completed with the correct words.
    """
    return correct_answers_feedback(
        [answered_exercise_text(exercise_type=exercise_type, data=data, answer=reference)]
    )


def for_display(feedback: str, *, cyrillic: bool) -> str:
    """Feedback as sent: for Serbian Cyrillic readers the `<code>` contents are transliterated."""
    if not cyrillic:
        return feedback

    def convert(match: re.Match[str]) -> str:
        parts = _TAG.split(match.group(1))
        converted = [
            part
            if part.startswith("<")
            else html.escape(latin_to_cyrillic(html.unescape(part)), quote=False)
            for part in parts
        ]
        return f"<code>{''.join(converted)}</code>"

    return _CODE_BLOCK.sub(convert, feedback)
