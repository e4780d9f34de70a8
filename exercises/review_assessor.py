"""The assessor of the `review_processor` job: what the model is shown about a flagged exercise.

An exercise's verdicts are summarised per (answer text, correct) with how many learners gave each,
and one LLM call (purpose `assessment`) returns a `PendingExerciseAnalysis`: for a choose-accent
exercise, whether the word is common enough (mapped onto the same analysis); for the other types,
whether the exercise is flawed given what learners answered. `exercises.review` decides and writes.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from duoniche import llm
from duoniche.enums import ExerciseType, LLMPurpose
from duoniche.texts import render
from exercises.answers import answered_exercise_text
from exercises.content import without_stress
from exercises.models import Exercise, ExerciseAnswer
from exercises.prompts import data_tag, language_name
from exercises.prompts.review import (
    ASSESS_PENDING_ACCENT_WORD,
    ASSESS_PENDING_EXERCISE,
    AccentWordAnalysis,
    PendingExerciseAnalysis,
)

#: The assessor sees answers and feedback as English-speaking staff would (docs/jobs.md).
REVIEW_USER_LANGUAGE = "en"


@dataclass(frozen=True)
class AnswerSummary:
    """One (answer text, correct) group of an exercise's verdicts."""

    answer: dict[str, Any]
    answer_text: str
    count: int
    existing_feedback: str


# --- answer summaries ---------------------------------------------------------------------------


def answer_summaries(
    verdicts: Iterable[ExerciseAnswer],
) -> tuple[list[AnswerSummary], list[AnswerSummary]]:
    """(correct, incorrect) summaries of one exercise's verdicts, given in creation order.

    Variants of one (answer text, correct) group, e.g. the same answer with feedback in several
    languages, are summed; the feedback kept is the first English one, else the first variant's.
    Incorrect summaries are sorted by count, most frequent first.
    """
    groups: dict[tuple[str, bool], list[ExerciseAnswer]] = defaultdict(list)
    for verdict in verdicts:
        groups[(verdict.answer_text, verdict.is_correct)].append(verdict)
    correct: list[AnswerSummary] = []
    incorrect: list[AnswerSummary] = []
    for (text, is_correct), variants in groups.items():
        representative = next(
            (v for v in variants if v.feedback_language == REVIEW_USER_LANGUAGE), variants[0]
        )
        summary = AnswerSummary(
            answer=representative.answer,
            answer_text=text,
            count=sum(v.attempts_count for v in variants),
            existing_feedback=representative.feedback,
        )
        (correct if is_correct else incorrect).append(summary)
    incorrect.sort(key=lambda summary: summary.count, reverse=True)
    return correct, incorrect


# --- the assessor -------------------------------------------------------------------------------


def accent_word(exercise: Exercise) -> str:
    """The word to assess: `options[0]` without backticks, apostrophes or its stress mark."""
    options = exercise.data.get("options") or []
    if not options:
        raise ValueError(f"choose_accent exercise {exercise.pk} has no options")
    word = without_stress(str(options[0])).replace("`", "").replace("'", "")
    return unicodedata.normalize("NFC", word)


def _accent_analysis(exercise: Exercise) -> tuple[PendingExerciseAnalysis, dict[str, Any]]:
    word = accent_word(exercise)
    result: AccentWordAnalysis = llm.structured_call(
        purpose=LLMPurpose.ASSESSMENT,
        prompt=ASSESS_PENDING_ACCENT_WORD,
        values={
            "exercise_language": exercise.exercise_language,
            "user_language": language_name(REVIEW_USER_LANGUAGE),
            "language_level": exercise.language_level,
            "topic": exercise.topic,
            "word": data_tag("dictionary_word", word),
        },
        subject=review_subject(exercise),
    )
    level = exercise.language_level
    if not result.is_common_and_known:
        mapped = PendingExerciseAnalysis(
            is_exercise_flawed=True,
            is_complex_but_correct=False,
            primary_reason_for_user_errors=(
                f"The word '{word}' is not common or well known enough for level {level}: "
                f"{result.reasoning}"
            ),
            suggested_action="ARCHIVE",
            suggested_revision=None,
        )
    elif result.confidence_level == "HIGH":
        mapped = PendingExerciseAnalysis(
            is_exercise_flawed=False,
            is_complex_but_correct=False,
            primary_reason_for_user_errors=(
                f"The word '{word}' is common; the errors are likely about its stress."
            ),
            suggested_action="PUBLISH_OK",
            suggested_revision=None,
        )
    else:
        mapped = PendingExerciseAnalysis(
            is_exercise_flawed=False,
            is_complex_but_correct=False,
            primary_reason_for_user_errors=(
                f"The word '{word}' may be common, but the assessor's confidence is "
                f"{result.confidence_level}: {result.reasoning}"
            ),
            suggested_action="PENDING_ADMIN_REVIEW",
            suggested_revision=(
                f"Please verify how common the word '{word}' is for level {level} "
                f"(assessor confidence: {result.confidence_level})."
            ),
        )
    return mapped, {**mapped.model_dump(), "word_analysis": result.model_dump()}


def _options_listing(options: Iterable[Any]) -> str:
    return "\n".join(f"- {option}" for option in options)


def exercise_text(exercise: Exercise) -> str:
    """The exercise as the learner saw it: instruction, text and options."""
    task = render(f"task_{exercise.exercise_type}", REVIEW_USER_LANGUAGE)
    data = exercise.data
    if exercise.exercise_type == ExerciseType.FILL_IN_THE_BLANK:
        words = ", ".join(str(word) for word in data.get("words") or [])
        return f"{task}\n{data.get('text_with_blanks') or ''}\nWords offered: {words}"
    options = _options_listing(data.get("options") or [])
    if exercise.exercise_type == ExerciseType.STORY_COMPREHENSION:
        return f"Story:\n{data.get('content_text') or ''}\n\n{task}\nOptions:\n{options}"
    return f"{task}\nOptions:\n{options}"


def _in_context(exercise: Exercise, summary: AnswerSummary) -> str:
    try:
        return answered_exercise_text(
            exercise_type=exercise.exercise_type, data=exercise.data, answer=summary.answer
        )
    except (KeyError, TypeError):  # an answer shape that does not fit: show its text
        return summary.answer_text


def _exercise_analysis(
    exercise: Exercise, correct: list[AnswerSummary], incorrect: list[AnswerSummary]
) -> tuple[PendingExerciseAnalysis, dict[str, Any]]:
    correct_lines = [
        f"- {_in_context(exercise, summary)} (chosen by {summary.count} learners)"
        for summary in correct
    ]
    incorrect_lines = []
    for summary in incorrect:
        line = f"- {_in_context(exercise, summary)} (given by {summary.count} learners)"
        if summary.existing_feedback:
            line += f"\n  Feedback they got: {summary.existing_feedback}"
        incorrect_lines.append(line)
    result: PendingExerciseAnalysis = llm.structured_call(
        purpose=LLMPurpose.ASSESSMENT,
        prompt=ASSESS_PENDING_EXERCISE,
        values={
            "exercise_language": exercise.exercise_language,
            "user_language": language_name(REVIEW_USER_LANGUAGE),
            "exercise_type": exercise.exercise_type,
            "language_level": exercise.language_level,
            "topic": exercise.topic,
            "exercise_text": data_tag("exercise_data", exercise_text(exercise)),
            "correct_answers": data_tag("exercise_options", "\n".join(correct_lines)),
            "incorrect_answers": data_tag(
                "student_answer", "\n".join(incorrect_lines) or "(none recorded)"
            ),
        },
        subject=review_subject(exercise),
    )
    return result, result.model_dump()


def assess_pending_exercise(
    *, exercise: Exercise, correct: list[AnswerSummary], incorrect: list[AnswerSummary]
) -> tuple[PendingExerciseAnalysis, dict[str, Any]]:
    """The assessor's analysis and what to store as the review's `analysis`.

    One LLM call (operation `assess_pending_accent_word` for choose-accent, otherwise
    `assess_pending_exercise`); exceptions propagate (the caller keeps the exercise pending).
    """
    if exercise.exercise_type == ExerciseType.CHOOSE_ACCENT:
        return _accent_analysis(exercise)
    return _exercise_analysis(exercise, correct, incorrect)


def review_subject(exercise: Exercise) -> str:
    """The ledger subject of a review call (`review:exercise:42`)."""
    return f"review:exercise:{exercise.pk}"
