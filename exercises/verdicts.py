"""Stored verdicts (`ExerciseAnswer`): their value type, the read of an exercise's accepted
answers, and the one write path: every insert, change and delete.

Who decides what to write lives elsewhere: `exercises.judging` judges learners' answers (reuse, the
LLM validator, translations, automatic verdicts), `exercises.services` creates an exercise with
its reference verdict, and `exercises.staff_edit` / `exercises.staff_verdicts` carry a
moderator's changes. They all call this module. Callers own the transaction; the inserts of
learners' verdicts are insert-or-get on `uniq_verdict_answer_language`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction

from duoniche.rows import Statement
from duoniche.telegram_html import clean_telegram_html, truncate_visible
from exercises.answers import CanonicalAnswer
from exercises.models import Exercise, ExerciseAnswer

FEEDBACK_MAX_VISIBLE = 1500
#: `created_by` of automatic verdicts (wrong accent and story answers): "auto:<user id>".
AUTOMATIC_PREFIX = "auto:"


@dataclass(frozen=True)
class Verdict:
    """A judgement of one answer; `verdict_id` is None for the (unstored) deterministic one."""

    is_correct: bool
    feedback: str
    error_tags: dict[str, Any] | None
    verdict_id: int | None

    @classmethod
    def from_row(cls, row: ExerciseAnswer) -> Verdict:
        return cls(
            is_correct=row.is_correct,
            feedback=row.feedback,
            error_tags=row.error_tags,
            verdict_id=row.pk,
        )


def accepted_verdicts_sql(exercise_alias: str) -> str:
    """A scalar subquery for a statement that reads exercise `exercise_alias`: its correct verdicts.

    They are few (the reference and the answers accepted since), and a correct row is reused in
    every language, so a reader of the exercise can judge the usual, correct answer without
    another statement. Decode the column with `accepted_verdicts`.
    """
    return (
        "(SELECT json_agg(json_build_array(v.answer_key, v.id, v.feedback, v.error_tags) "  # noqa: S608
        "ORDER BY v.is_reference DESC, v.created_at, v.id) "
        f"FROM {ExerciseAnswer._meta.db_table} v "
        f"WHERE v.exercise_id = {exercise_alias}.id AND v.is_correct)"
    )


def accepted_verdicts(column: Any) -> dict[str, Verdict]:
    """The `accepted_verdicts_sql` column as {answer key: verdict}, the preferred row per key."""
    if isinstance(column, str):
        column = json.loads(column)
    accepted: dict[str, Verdict] = {}
    for answer_key, verdict_id, feedback, error_tags in column or []:
        accepted.setdefault(
            answer_key,
            Verdict(
                is_correct=True, feedback=feedback, error_tags=error_tags, verdict_id=verdict_id
            ),
        )
    return accepted


def clean_feedback(text: str) -> str:
    """Feedback as stored: the Telegram-HTML subset, at most 1500 visible characters."""
    return truncate_visible(clean_telegram_html(text), FEEDBACK_MAX_VISIBLE)


# --- learners' answers ----------------------------------------------------------------------------


def verdict_insert(
    *,
    exercise: Exercise,
    answer: CanonicalAnswer,
    is_correct: bool,
    feedback: str,
    feedback_language: str,
    error_tags: dict[str, Any] | None,
    created_by: str,
) -> ExerciseAnswer:
    """Insert-or-get a verdict: on `uniq_verdict_answer_language` the existing row is returned."""
    try:
        with transaction.atomic():
            return ExerciseAnswer.objects.create(
                exercise=exercise,
                answer=answer.answer,
                answer_text=answer.text,
                answer_key=answer.key,
                is_correct=is_correct,
                feedback=feedback,
                feedback_language=feedback_language,
                error_tags=error_tags,
                created_by=created_by[:100],
            )
    except IntegrityError:
        return ExerciseAnswer.objects.get(
            exercise=exercise, answer_key=answer.key, feedback_language=feedback_language
        )


def verdict_counted(verdict_id: int) -> Statement:
    """The increment counting one recorded attempt that used the verdict.

    A statement, not a write: the caller runs it inside the write that records the attempt
    (`duoniche.rows.run_with`), so both land or neither does, in one round trip.
    """
    return Statement(
        f"UPDATE {ExerciseAnswer._meta.db_table} "  # noqa: S608
        "SET attempts_count = attempts_count + 1 WHERE id = %s",
        (verdict_id,),
    )


# --- the reference answer -------------------------------------------------------------------------


def verdict_reference_create(
    *, exercise: Exercise, answer: CanonicalAnswer, feedback: str, created_by: str, now: datetime
) -> ExerciseAnswer:
    """The exercise's reference verdict: its canonical correct answer, in every language."""
    return _correct_create(
        exercise=exercise,
        answer=answer,
        feedback=feedback,
        is_reference=True,
        created_by=created_by,
        now=now,
    )


def _correct_create(
    *,
    exercise: Exercise,
    answer: CanonicalAnswer,
    feedback: str,
    is_reference: bool,
    created_by: str,
    now: datetime,
) -> ExerciseAnswer:
    """A correct verdict for every language (`feedback_language` empty, no error tags)."""
    return ExerciseAnswer.objects.create(
        exercise=exercise,
        answer=answer.answer,
        answer_text=answer.text,
        answer_key=answer.key,
        is_correct=True,
        feedback=feedback,
        feedback_language="",
        error_tags=None,
        is_reference=is_reference,
        created_by=created_by,
        created_at=now,
    )


def verdict_reference_replace(
    *,
    exercise: Exercise,
    reference: ExerciseAnswer | None,
    answer: CanonicalAnswer,
    feedback: str,
    created_by: str,
    now: datetime,
) -> None:
    """A new correct answer becomes the reference (the row is kept if it is the same answer)."""
    if reference is not None and reference.answer_key == answer.key:
        reference.answer = answer.answer
        reference.feedback = feedback
        reference.save(update_fields=["answer", "feedback", "updated_at"])
        return
    if reference is not None:
        reference.delete()  # its attempts keep their copies
    verdict_reference_create(
        exercise=exercise, answer=answer, feedback=feedback, created_by=created_by, now=now
    )


def verdict_reference_feedback_set(*, exercise_id: int, feedback: str, now: datetime) -> None:
    """The reference's feedback follows the exercise (an accent exercise's meaning)."""
    ExerciseAnswer.objects.filter(exercise_id=exercise_id, is_reference=True).update(
        feedback=feedback, updated_at=now
    )


# --- a moderator's changes ------------------------------------------------------------------------


def verdict_accepted_create(
    *, exercise: Exercise, answer: CanonicalAnswer, created_by: str, now: datetime
) -> ExerciseAnswer:
    """Another accepted answer: a language-neutral correct verdict replacing its judgements."""
    ExerciseAnswer.objects.filter(exercise=exercise, answer_key=answer.key).delete()
    verdicts_drop_automatic(exercise.pk)
    return _correct_create(
        exercise=exercise,
        answer=answer,
        feedback="",
        is_reference=False,
        created_by=created_by,
        now=now,
    )


def verdict_judgement_set(*, verdict: ExerciseAnswer, is_correct: bool, feedback: str) -> None:
    """A moderator's judgement and feedback (cleaned); `created_by` is kept."""
    changed = verdict.is_correct != is_correct
    verdict.is_correct = is_correct
    verdict.feedback = clean_feedback(feedback)
    verdict.save(update_fields=["is_correct", "feedback", "updated_at"])
    if changed:
        verdicts_drop_automatic(verdict.exercise_id)


def verdicts_drop_automatic(exercise_id: int) -> None:
    """The correct answers changed: automatic verdicts list them in their feedback, so they go
    (the next wrong answer rebuilds its verdict with the new list)."""
    ExerciseAnswer.objects.filter(
        exercise_id=exercise_id, is_correct=False, created_by__startswith=AUTOMATIC_PREFIX
    ).delete()


def verdicts_delete(verdict_ids: list[int]) -> None:
    """Delete stored verdicts; the attempts that used them keep their copies (verdict → null)."""
    if verdict_ids:
        ExerciseAnswer.objects.filter(pk__in=verdict_ids).delete()
