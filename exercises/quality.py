"""The generation-time quality assessor.

Every generated exercise except choose_accent is assessed before it is saved. Deterministic checks
run first: the shape checks, then the language check against the dictionaries (language_check.py,
issue `<kind>:<offending words>`). Any failure rejects the exercise without an LLM call; then the
assessment model reviews it. An LLM failure counts as invalid
(`llm_assessment_failed:<error class>`), because generated exercises are never published
unreviewed.
"""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from duoniche import llm, llm_models
from duoniche.enums import ExerciseType, LLMPurpose
from duoniche.languages import get_language
from duoniche.texts import render
from exercises.answers import answered_text
from exercises.content import BLANK, uses_only_script
from exercises.drafts import Draft
from exercises.generators import generation_subject
from exercises.language_check import check_exercise, issue_codes
from exercises.prompts import data_tag, language_name
from exercises.prompts.assess import ASSESS_GENERATED_EXERCISE

logger = logging.getLogger(__name__)

#: Telegram's limit for an inline button's callback data, which a fill word must fit.
MAX_WORD_BYTES = 64
#: Options a choose-sentence or story exercise must have.
CHOICE_OPTION_COUNT = 3
#: The longest issue text kept from the model (they end up in `comments`).
MAX_ISSUE_LENGTH = 300

DUPLICATE_OPTIONS = "duplicate_options"
OPTION_TOO_LONG = "option_too_long"
OPTION_CONTAINS_SPACE = "option_contains_space"
BLANK_COUNT_MISMATCH = "blank_count_mismatch"
MIXED_ALPHABET = "mixed_alphabet"
WRONG_OPTION_COUNT = "wrong_option_count"
LLM_ASSESSMENT_FAILED = "llm_assessment_failed"
NO_ISSUE_GIVEN = "rejected without a stated issue"


@dataclass(frozen=True)
class Assessment:
    """The assessor's decision; `analysis` is what it produced, kept verbatim in the review."""

    is_valid: bool
    issues: tuple[str, ...] = ()
    analysis: dict[str, Any] = field(default_factory=dict)


def options_of(draft: Draft) -> list[str]:
    """The strings the learner chooses from: fill words, otherwise options."""
    key = "words" if draft.exercise_type == ExerciseType.FILL_IN_THE_BLANK else "options"
    return [str(option) for option in draft.data.get(key) or []]


def correct_options_of(draft: Draft) -> list[str]:
    if draft.exercise_type == ExerciseType.FILL_IN_THE_BLANK:
        return [str(word) for word in draft.correct_answer.get("words") or []]
    return [str(draft.correct_answer.get("answer") or "")]


def incorrect_options_of(draft: Draft) -> list[str]:
    """The options after the correct ones (options are stored correct first)."""
    return options_of(draft)[len(correct_options_of(draft)) :]


def deterministic_issues(*, draft: Draft) -> list[str]:
    """The issue codes of the checks that fail, in table order (empty: all pass)."""
    issues: list[str] = []
    options = options_of(draft)
    is_fill = draft.exercise_type == ExerciseType.FILL_IN_THE_BLANK
    normalized = [unicodedata.normalize("NFC", option) for option in options]
    if len(set(normalized)) != len(normalized):
        issues.append(DUPLICATE_OPTIONS)
    if is_fill:
        if any(len(word.encode("utf-8")) > MAX_WORD_BYTES for word in options):
            issues.append(OPTION_TOO_LONG)
        if any(any(ch.isspace() for ch in word) for word in options):
            issues.append(OPTION_CONTAINS_SPACE)
        blanks = str(draft.data.get("text_with_blanks") or "").count(BLANK)
        if len(correct_options_of(draft)) != blanks:
            issues.append(BLANK_COUNT_MISMATCH)
    language = get_language(draft.exercise_language)
    if language is not None and not all(
        uses_only_script(option, language.generation_script) for option in options
    ):
        issues.append(MIXED_ALPHABET)
    if not is_fill and len(options) != CHOICE_OPTION_COUNT:
        issues.append(WRONG_OPTION_COUNT)
    return issues


def language_issues(*, draft: Draft) -> list[str]:
    """The language check's issues (`<kind>:<word>, <word>`); none when it is disabled."""
    findings = check_exercise(
        exercise_type=draft.exercise_type,
        exercise_language=draft.exercise_language,
        data=draft.data,
    )
    return issue_codes(findings or [])


def _review_values(draft: Draft) -> dict[str, str]:
    """The assessor's inputs: exercise text, options and the correct answer."""
    task = render(f"task_{draft.exercise_type}", "en")
    data = draft.data
    correct = correct_options_of(draft)
    if draft.exercise_type == ExerciseType.FILL_IN_THE_BLANK:
        sentence = str(data.get("text_with_blanks") or "")
        text = f"{task}\n{sentence}"
        correct_answer = answered_text(sentence, correct)
    elif draft.exercise_type == ExerciseType.STORY_COMPREHENSION:
        text = f"{data.get('content_text') or ''}\n{task}"
        correct_answer = correct[0]
    else:
        text = task
        correct_answer = correct[0]

    def listing(values: list[str]) -> str:
        return data_tag("exercise_options", "\n".join(f"- {value}" for value in values))

    return {
        "exercise_language": draft.exercise_language,
        "user_language": language_name(settings.DEFAULT_USER_LANGUAGE),
        "exercise_type": draft.exercise_type,
        "language_level": draft.language_level,
        "exercise_text": data_tag("exercise_data", text),
        "correct_options": listing(correct),
        "incorrect_options": listing(incorrect_options_of(draft)),
        "options": listing(options_of(draft)),
        "correct_answer": data_tag("exercise_data", correct_answer),
    }


def _clean_issues(issues: list[str]) -> list[str]:
    cleaned = (" ".join(issue.split())[:MAX_ISSUE_LENGTH] for issue in issues)
    return [issue for issue in cleaned if issue]


def assess_generated_exercise(*, draft: Draft) -> Assessment:
    """Deterministic checks, then the LLM review (operation `assess_generated_exercise`)."""
    issues = deterministic_issues(draft=draft) + language_issues(draft=draft)
    if issues:
        return Assessment(
            is_valid=False,
            issues=tuple(issues),
            analysis={"stage": "deterministic", "is_valid": False, "issues": issues},
        )
    model = llm_models.model_name(LLMPurpose.ASSESSMENT)
    try:
        review = llm.structured_call(
            purpose=LLMPurpose.ASSESSMENT,
            prompt=ASSESS_GENERATED_EXERCISE,
            values=_review_values(draft),
            subject=generation_subject(
                bot_id=draft.exercise_language, exercise_type=draft.exercise_type
            ),
        )
    except llm.LLMError as exc:
        issue = f"{LLM_ASSESSMENT_FAILED}:{type(exc).__name__}"
        logger.warning("quality assessment of a generated exercise failed: %s", issue)
        return Assessment(
            is_valid=False,
            issues=(issue,),
            analysis={
                "stage": "llm",
                "model": model,
                "is_valid": False,
                "issues": [issue],
                "error": str(exc)[:500],
            },
        )
    model_issues = _clean_issues(review.issues)
    if not review.is_valid and not model_issues:
        model_issues = [NO_ISSUE_GIVEN]
    return Assessment(
        is_valid=review.is_valid,
        issues=tuple(model_issues) if not review.is_valid else (),
        analysis={"stage": "llm", "model": model, **review.model_dump()},
    )
