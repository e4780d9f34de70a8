"""Judging an answer: reuse a stored verdict, or create one (writes through `exercises.verdicts`).

The verdict cache holds one row per (exercise, canonical answer, feedback language). A correct row
is reused in every language; an incorrect one in its own language. Otherwise a new row comes from
an automatic verdict (accent, story), a translation of an existing row's feedback, or the LLM
validator. When the needed LLM purpose is disabled or the model fails, the deterministic verdict is
returned instead and not stored, so a later LLM-backed call can still write real feedback.

A validator's "correct" is never stored: no accepted verdict of that answer exists (it would have
been reused), so the model contradicts the exercise's reference. That verdict counts for its
learner only (their attempt and response), the exercise goes to the moderators' queue
(`exercise_flag_disputed_answer`), and the answer is reused as correct for others only once a
moderator accepts it (`exercises.moderation.exercise_add_accepted_answer`). Until then each learner
giving it is judged afresh. A model talked into "correct" by one learner cannot pass that verdict
on (issue 10, item 8).

Creation runs under the cache lock `verdict:<exercise>:<answer_key>:<feedback_language>`: the
winner calls the model (outside any transaction) and inserts; the others poll for the row and reuse
it. The insert is insert-or-get on `uniq_verdict_answer_language`, the final guarantee. The
validator itself is additionally serialised per (exercise, answer_key), so concurrent learners with
different languages get one validation and one translation rather than two validations.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from duoniche import llm, llm_budget
from duoniche.enums import ExerciseStatus, ExerciseType, LLMPurpose, ReviewSource
from duoniche.rows import Statement, instance_from_row, select_list
from duoniche.texts import render
from exercises.answers import (
    CanonicalAnswer,
    answered_exercise_text,
)
from exercises.automatic_verdicts import (
    AUTOMATIC_TAGS,
    deterministic_verdict,
    verdict_insert_automatic,
)
from exercises.content import public_data
from exercises.models import Exercise, ExerciseAnswer, ExerciseReview
from exercises.prompts import data_tag, language_name, neutralise
from exercises.prompts.translate import TRANSLATE_FEEDBACK
from exercises.prompts.validate import VALIDATORS
from exercises.services import exercise_attempt_counted, exercise_change_status
from exercises.tags import GRAMMAR_TAGS, VOCABULARY_TAGS
from exercises.verdicts import Verdict, clean_feedback, verdict_counted, verdict_insert

logger = logging.getLogger(__name__)

T = TypeVar("T")

LOCK_TTL_SECONDS = 150
WAIT_SECONDS = 60.0
POLL_SECONDS = 0.25
TRANSLATION_SOURCE_LANGUAGE = "en"
_GRAMMAR = frozenset(GRAMMAR_TAGS)
_VOCABULARY = frozenset(VOCABULARY_TAGS)


def _rows(exercise: Exercise, answer_key: str) -> list[ExerciseAnswer]:
    """The stored verdicts of one answer, oldest first.

    Written out (parameterised) because it runs on every validation and the ORM's compilation
    cost more than the indexed lookup.
    """
    statement = (
        f"SELECT {select_list(ExerciseAnswer, 'v')} FROM {ExerciseAnswer._meta.db_table} v "  # noqa: S608
        "WHERE v.exercise_id = %s AND v.answer_key = %s ORDER BY v.created_at, v.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, [exercise.pk, answer_key])
        return [instance_from_row(ExerciseAnswer, row) for row in cursor.fetchall()]


def _reusable(rows: list[ExerciseAnswer], feedback_language: str) -> ExerciseAnswer | None:
    """A correct row in any language (the reference first), else a row in the reader's language."""
    correct = sorted((row for row in rows if row.is_correct), key=lambda row: not row.is_reference)
    if correct:
        return correct[0]
    return next((row for row in rows if row.feedback_language == feedback_language), None)


def verdict_for_answer(
    *, exercise: Exercise, answer: CanonicalAnswer, user_id: int, user_language: str
) -> Verdict:
    """The verdict for a canonical answer read in `user_language`: reused, created or fallback.

    (A caller that read the exercise's correct verdicts with `accepted_verdicts_sql` checks those
    first.) Never call inside a transaction: it may call the LLM.
    """
    rows = _rows(exercise, answer.key)
    found = _reusable(rows, user_language)
    if found is not None:
        return Verdict.from_row(found)
    if exercise.exercise_type in AUTOMATIC_TAGS:
        return Verdict.from_row(
            verdict_insert_automatic(
                exercise=exercise, answer=answer, user_id=user_id, feedback_language=user_language
            )
        )
    purpose = LLMPurpose.TRANSLATION if rows else LLMPurpose.VALIDATION
    if not llm_budget.purpose_enabled(purpose):
        return deterministic_verdict(exercise=exercise, answer=answer)

    def ready() -> Verdict | None:
        row = _reusable(_rows(exercise, answer.key), user_language)
        return Verdict.from_row(row) if row is not None else None

    return _under_lock(
        f"verdict:{exercise.pk}:{answer.key}:{user_language}",
        ready=ready,
        produce=lambda: _produce(
            exercise=exercise, answer=answer, user_id=user_id, user_language=user_language
        ),
    )


def _under_lock(key: str, *, ready: Callable[[], T | None], produce: Callable[[], T]) -> T:
    """Run `produce` holding the cache lock `key`, unless `ready` finds the result first.

    While someone else holds the lock, poll `ready` every 250 ms; after 60 s produce anyway.
    """
    token = uuid.uuid4().hex
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        if cache.add(key, token, LOCK_TTL_SECONDS):
            try:
                found = ready()
                return found if found is not None else produce()
            finally:
                if cache.get(key) == token:
                    cache.delete(key)
        if time.monotonic() >= deadline:
            logger.warning("gave up waiting for %s; producing the verdict here", key)
            return produce()
        time.sleep(POLL_SECONDS)
        found = ready()
        if found is not None:
            return found


def _produce(
    *, exercise: Exercise, answer: CanonicalAnswer, user_id: int, user_language: str
) -> Verdict:
    rows = _rows(exercise, answer.key)
    if not rows:
        # One validation per answer whatever the language: a concurrent learner with another
        # language waits for it, then translates.
        def validated_rows() -> Verdict | list[ExerciseAnswer] | None:
            return _rows(exercise, answer.key) or None

        def validate() -> Verdict | list[ExerciseAnswer]:
            return _validate(
                exercise=exercise, answer=answer, user_id=user_id, user_language=user_language
            )

        outcome: Verdict | list[ExerciseAnswer] = _under_lock(
            f"verdict:{exercise.pk}:{answer.key}",
            ready=validated_rows,
            produce=validate,
        )
        if isinstance(outcome, Verdict):
            return outcome
        rows = outcome
        found = _reusable(rows, user_language)
        if found is not None:
            return Verdict.from_row(found)
    return _translate(
        exercise=exercise, answer=answer, sources=rows, feedback_language=user_language
    )


def allowed_error_tags(tags: dict[str, list[str]] | None) -> dict[str, list[str]]:
    """Error tags restricted to the vocabularies (anything else the model invented is dropped)."""
    tags = tags or {}
    return {
        "grammar": [tag for tag in tags.get("grammar") or [] if tag in _GRAMMAR],
        "vocabulary": [tag for tag in tags.get("vocabulary") or [] if tag in _VOCABULARY],
    }


def _validate(
    *, exercise: Exercise, answer: CanonicalAnswer, user_id: int, user_language: str
) -> Verdict:
    """Ask the validator and store its verdict; on failure the deterministic one."""
    prompt = VALIDATORS[exercise.exercise_type]
    data = exercise.data
    values = {
        "exercise_language": exercise.exercise_language,
        "user_language": language_name(user_language),
        "topic": exercise.topic,
        "task": render(f"task_{exercise.exercise_type}", "en"),
        "student_answer": data_tag(
            "student_answer",
            answered_exercise_text(
                exercise_type=exercise.exercise_type, data=data, answer=answer.answer
            ),
        ),
    }
    if exercise.exercise_type == ExerciseType.FILL_IN_THE_BLANK:
        values["text_with_blanks"] = neutralise(str(data.get("text_with_blanks") or ""))
        values["words"] = neutralise(", ".join(str(word) for word in data.get("words") or []))
    else:
        options = "\n".join(f"- {option}" for option in data.get("options") or [])
        values["options"] = data_tag("exercise_options", options)
    try:
        result = llm.validate_answer(
            prompt=prompt, values=values, subject=f"exercise:{exercise.pk}"
        )
    except llm.LLMError as exc:
        logger.warning("validation of exercise %s fell back: %s", exercise.pk, type(exc).__name__)
        return deterministic_verdict(exercise=exercise, answer=answer)
    if result.is_correct:
        # No accepted verdict of this answer exists (else it would have been reused), so the
        # model contradicts the reference: the learner gets its verdict, nobody else until a
        # moderator accepts the answer.
        exercise_flag_disputed_answer(
            exercise_id=exercise.pk, answer=answer, user_id=user_id, now=timezone.now()
        )
        return Verdict(
            is_correct=True,
            feedback=clean_feedback(result.feedback),
            error_tags=allowed_error_tags(result.error_tags),
            verdict_id=None,
        )
    row = verdict_insert(
        exercise=exercise,
        answer=answer,
        is_correct=result.is_correct,
        feedback=clean_feedback(result.feedback),
        feedback_language=user_language,
        error_tags=allowed_error_tags(result.error_tags),
        created_by=f"LLM:user:{user_id}",
    )
    return Verdict.from_row(row)


def _translate(
    *,
    exercise: Exercise,
    answer: CanonicalAnswer,
    sources: list[ExerciseAnswer],
    feedback_language: str,
) -> Verdict:
    """Translate an existing verdict's feedback and store the copy."""
    source = next(
        (row for row in sources if row.feedback_language == TRANSLATION_SOURCE_LANGUAGE),
        sources[0],
    )
    translated = ""
    if source.feedback.strip():
        values = {
            "exercise_language": exercise.exercise_language,
            "user_language": language_name(feedback_language),
            "exercise_data": data_tag(
                "exercise_data",
                json.dumps(public_data(exercise.exercise_type, exercise.data), ensure_ascii=False),
            ),
            "student_answer": data_tag("student_answer", answer.text),
            "original_feedback": data_tag("original_feedback", source.feedback),
        }
        try:
            translated = llm.translate_feedback(
                prompt=TRANSLATE_FEEDBACK, values=values, subject=f"exercise:{exercise.pk}"
            )
        except llm.LLMError as exc:
            logger.warning(
                "translation for exercise %s fell back: %s", exercise.pk, type(exc).__name__
            )
            return deterministic_verdict(exercise=exercise, answer=answer)
    row = verdict_insert_translation(
        exercise=exercise,
        answer=answer,
        source=source,
        feedback=clean_feedback(translated),
        feedback_language=feedback_language,
    )
    return Verdict.from_row(row)


#: What the moderators' queue shows for a disputed answer (the assessor's suggestion column).
DISPUTED_ANSWER_ACTION = "ADD_CORRECT_ANSWER_AND_ADMIN_REVIEW"


def exercise_flag_disputed_answer(
    *, exercise_id: int, answer: CanonicalAnswer, user_id: int, now: datetime
) -> ExerciseReview | None:
    """The validator judged an answer correct that is not an accepted one: ask a moderator.

    A published exercise goes to `pending_admin_review` (out of selection) with the answer as the
    suggested revision; accepting it in the admin (`exercise_add_accepted_answer`) stores the
    correct verdict that everyone then reuses. An exercise that is not published is left alone
    (it is already out of selection, or a moderator has it), so concurrent or repeated disputes
    record one review. Returns the review, or None when nothing changed.
    """
    return exercise_change_status(
        exercise_id=exercise_id,
        new_status=ExerciseStatus.PENDING_ADMIN_REVIEW,
        source=ReviewSource.QUALITY_MONITOR,
        now=now,
        note=f"the validator judged {answer.text!r} correct, which is not an accepted answer",
        analysis={
            "action": "validator_disputes_reference",
            "suggested_action": DISPUTED_ANSWER_ACTION,
            "suggested_revision": answer.text,
            "answer": answer.answer,
            "user_id": user_id,
        },
        expected_status=ExerciseStatus.PUBLISHED,
    )


def verdict_insert_translation(
    *,
    exercise: Exercise,
    answer: CanonicalAnswer,
    source: ExerciseAnswer,
    feedback: str,
    feedback_language: str,
) -> ExerciseAnswer:
    """A translated copy of `source` (same judgement and tags) for another feedback language."""
    return verdict_insert(
        exercise=exercise,
        answer=answer,
        is_correct=source.is_correct,
        feedback=feedback,
        feedback_language=feedback_language,
        error_tags=source.error_tags,
        created_by=f"translated_answer:{source.pk}",
    )


def verdict_attempt_counted(*, exercise_id: int, verdict_id: int | None) -> list[Statement]:
    """The increments counting one recorded attempt on the exercise and on the verdict it used.

    Statements, not a write: the caller runs them inside the write that records the attempt
    (`duoniche.rows.run_with`), so both land or neither does, in one round trip.
    """
    statements = [exercise_attempt_counted(exercise_id=exercise_id)]
    if verdict_id is not None:
        statements.append(verdict_counted(verdict_id))
    return statements
