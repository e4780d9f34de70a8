"""Checking a learner's answer: the validate endpoints' service (docs/api.md).

Everything that can fail with a 4xx is checked before the first write. The verdict (which may call
the LLM) is obtained outside any transaction; then one statement records the attempt and bumps the
counters in place. An LLM failure never surfaces: the deterministic verdict is used and the answer
is 200 (Fix: the previous service answered 422 or 500 and left a NULL attempt behind).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, connection

from duoniche import metrics
from duoniche.api.errors import ApplicationError
from duoniche.languages import get_language, shows_cyrillic
from duoniche.rows import insert_statement, run_with
from exercises.answers import (
    AnswerNotInOptions,
    AnswerShapeError,
    CanonicalAnswer,
    canonical_answer,
    for_display,
)
from exercises.judging import verdict_attempt_counted, verdict_for_answer
from exercises.models import Exercise
from exercises.verdicts import Verdict, accepted_verdicts, accepted_verdicts_sql
from learning.effective_settings import valid_overrides
from learning.errors import profile_not_found
from learning.models import BotProfile, ExerciseAttempt, ReviewCard, TelegramUser
from learning.profiles import profile_answer_counted
from learning.review_cards import CardState, card_columns_sql, card_from_row, card_reviewed

logger = logging.getLogger(__name__)

#: The duplicate-submission lock lives this long while the first submission is being judged.
DUPLICATE_LOCK_SECONDS = 150
DUPLICATE_WAIT_SECONDS = 60.0
DUPLICATE_POLL_SECONDS = 0.25


@dataclass(frozen=True)
class ValidationResult:
    """The response: the verdict and its feedback as this learner reads it."""

    is_correct: bool
    feedback: str


def exercise_not_found(exercise_id: int) -> ApplicationError:
    return ApplicationError(
        f"Exercise {exercise_id} does not exist.", code="exercise_not_found", status=404
    )


@dataclass(frozen=True)
class Learner:
    """What validation needs of the learner's profile for the exercise's bot."""

    profile_id: int
    user_language: str
    alphabet: str | None
    last_exercise_at: datetime | None
    card: CardState | None


_EXERCISE_COLUMNS = (
    "id",
    "exercise_type",
    "exercise_language",
    "language_level",
    "topic",
    "data",
    "grammar_tags",
)


@dataclass(frozen=True)
class ExerciseToJudge:
    """The exercise an answer is for, with its correct verdicts by answer key."""

    exercise: Exercise
    accepted: dict[str, Verdict]


def exercise_with_learner(
    *, exercise_id: int, user_id: int
) -> tuple[ExerciseToJudge | None, Learner | None]:
    """The exercise (with its correct verdicts) and the learner's profile for its bot.

    None for either when it is missing. One statement on the bot's hot path: the profile is
    joined by `(user, bot_id = exercise_language)` through its unique index, the learner's review
    card of the exercise by its unique index, and the correct verdicts come along so that a
    correct answer (the usual case) needs no second read. Written out (parameterised) because the
    ORM's compilation of this join cost more than running it.
    """
    columns = ", ".join(f"e.{column}" for column in _EXERCISE_COLUMNS)
    exercise_table = Exercise._meta.db_table
    profile_table = BotProfile._meta.db_table
    user_table = TelegramUser._meta.db_table
    card_table = ReviewCard._meta.db_table
    statement = (
        f"SELECT {columns}, {accepted_verdicts_sql('e')}, "  # noqa: S608
        "p.id, p.user_language, p.settings, p.last_exercise_at, "
        f"u.custom_settings, {card_columns_sql('c')} FROM {exercise_table} e "
        f"LEFT JOIN {profile_table} p ON p.user_id = %s AND p.bot_id = e.exercise_language "
        f"LEFT JOIN {user_table} u ON u.id = p.user_id "
        f"LEFT JOIN {card_table} c ON c.user_id = %s AND c.exercise_id = e.id WHERE e.id = %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, [user_id, user_id, exercise_id])
        row = cursor.fetchone()
    if row is None:
        return None, None
    values = [_json(value) if column in ("data", "grammar_tags") else value
              for column, value in zip(_EXERCISE_COLUMNS, row, strict=False)]  # fmt: skip
    exercise = Exercise.from_db(connection.alias, list(_EXERCISE_COLUMNS), values)
    accepted, profile_pk, user_language, settings_json, last_exercise_at, custom_json = row[
        len(_EXERCISE_COLUMNS) : len(_EXERCISE_COLUMNS) + 6
    ]
    card = card_from_row(row[len(_EXERCISE_COLUMNS) + 6 :])
    judged = ExerciseToJudge(exercise=exercise, accepted=accepted_verdicts(accepted))
    if profile_pk is None:
        return judged, None
    bot_id = exercise.exercise_language
    overrides = valid_overrides(
        _json(custom_json), user_id=user_id, bot_id=bot_id, source="custom_settings"
    )
    overrides.update(
        valid_overrides(
            _json(settings_json), user_id=user_id, bot_id=bot_id, source="profile settings"
        )
    )
    alphabet = overrides.get("alphabet")
    return judged, Learner(
        profile_id=profile_pk,
        user_language=user_language,
        alphabet=str(alphabet) if alphabet is not None else None,
        last_exercise_at=last_exercise_at,
        card=card,
    )


def _json(value: Any) -> Any:
    """A jsonb column read through a plain cursor (Django leaves it as text)."""
    return json.loads(value) if isinstance(value, str) else value


def _checked_answer(exercise: Exercise, answer: dict[str, Any]) -> CanonicalAnswer:
    try:
        return canonical_answer(
            exercise_type=exercise.exercise_type,
            exercise_language=exercise.exercise_language,
            data=exercise.data,
            submitted=answer,
        )
    except AnswerShapeError:
        needed = "words" if "words" not in answer else "answer"
        raise ApplicationError(
            f"Exercise {exercise.pk} is {exercise.exercise_type}: the answer must give `{needed}`.",
            code="answer_shape_invalid",
            status=422,
        ) from None
    except AnswerNotInOptions:
        raise ApplicationError(
            f"The answer is not one of the options of exercise {exercise.pk}.",
            code="answer_not_in_options",
            status=422,
        ) from None


def attempt_validate(
    *, exercise_id: int, user_id: int, answer: dict[str, Any], now: datetime
) -> ValidationResult:
    """Judge and record one answer (`{"exercise_type", "words"}` or `{"exercise_type", "answer"}`).

    Steps in the order docs/api.md gives; the same answer from the same learner within
    `ASYNC_TASK_CACHE_TTL` returns the earlier result and records nothing.
    """
    started = time.monotonic()
    judged, learner = exercise_with_learner(exercise_id=exercise_id, user_id=user_id)
    if judged is None:
        raise exercise_not_found(exercise_id)
    exercise = judged.exercise
    if answer.get("exercise_type") != exercise.exercise_type:
        raise ApplicationError(
            f"The answer is for a {answer.get('exercise_type')} exercise, but exercise "
            f"{exercise.pk} is {exercise.exercise_type}.",
            code="answer_type_mismatch",
            status=422,
        )
    language = get_language(exercise.exercise_language)
    if language is None:
        raise ApplicationError(
            f"Exercise {exercise.pk} is in {exercise.exercise_language}, which is no longer "
            "configured.",
            code="exercise_language_unconfigured",
            status=500,
        )
    if learner is None:
        raise profile_not_found(user_id, exercise.exercise_language)
    canonical = _checked_answer(exercise, answer)
    cyrillic = shows_cyrillic(language, learner.alphabet)

    window_key = f"validate:{user_id}:{exercise.pk}:{canonical.key}"
    # A correct answer's verdict came with the exercise, so the window can hold its result from
    # the start (one cache call); otherwise it holds a pending token while the verdict is made.
    known = judged.accepted.get(canonical.key)
    claim: dict[str, Any] | str = (
        _window_result(known) if known is not None else f"pending:{uuid.uuid4().hex}"
    )
    owned, earlier = _claim_submission(
        window_key,
        claim,
        settings.ASYNC_TASK_CACHE_TTL if known is not None else DUPLICATE_LOCK_SECONDS,
    )
    if earlier is not None:
        return ValidationResult(
            is_correct=bool(earlier["is_correct"]),
            feedback=for_display(str(earlier["feedback"]), cyrillic=cyrillic),
        )
    try:
        verdict = (
            known
            if known is not None
            else verdict_for_answer(
                exercise=exercise,
                answer=canonical,
                user_id=user_id,
                user_language=learner.user_language,
            )
        )
        record = partial(
            _record_attempt,
            exercise=exercise,
            learner=learner,
            user_id=user_id,
            submitted=answer,
            canonical=canonical,
            now=now,
        )
        try:
            record(verdict=verdict)
        except IntegrityError:
            # A row the attempt points to was deleted (by staff) after the read: its foreign-key
            # check failed at the write, which wrote nothing. (Inside a transaction, as no API
            # call is, that failure has aborted it: nothing more can be read.)
            if connection.in_atomic_block:
                raise
            verdict = _record_after_a_deletion(
                record, exercise=exercise, learner=learner, user_id=user_id, verdict=verdict
            )
    except BaseException:
        if owned and cache.get(window_key) == claim:
            cache.delete(window_key)
        raise
    if not (owned and known is not None):
        cache.set(window_key, _window_result(verdict), settings.ASYNC_TASK_CACHE_TTL)
    _observe(exercise, learner=learner, verdict=verdict, now=now, started=started)
    return ValidationResult(
        is_correct=verdict.is_correct, feedback=for_display(verdict.feedback, cyrillic=cyrillic)
    )


def _window_result(verdict: Verdict) -> dict[str, Any]:
    return {"is_correct": verdict.is_correct, "feedback": verdict.feedback}


def _claim_submission(
    key: str, value: dict[str, Any] | str, timeout: float
) -> tuple[bool, dict[str, Any] | None]:
    """Own the duplicate-submission window `key` (storing `value`), or get the earlier result.

    Returns (True, None) when this submission is the first; (False, result) when an identical
    one was judged within the window. A concurrent identical submission still being judged is
    waited for (poll 250 ms, up to 60 s); after that, (False, None): this one goes ahead on its
    own.
    """
    deadline = time.monotonic() + DUPLICATE_WAIT_SECONDS
    while True:
        if cache.add(key, value, timeout):
            return True, None
        earlier = cache.get(key)
        if isinstance(earlier, dict):
            return False, earlier
        if time.monotonic() >= deadline:
            logger.warning("gave up waiting for the identical submission %s", key)
            return False, None
        time.sleep(DUPLICATE_POLL_SECONDS)


def _record_after_a_deletion(
    record: Callable[..., int],
    *,
    exercise: Exercise,
    learner: Learner,
    user_id: int,
    verdict: Verdict,
) -> Verdict:
    """The learner's profile or the exercise gone: its 404. The verdict gone (a staff member
    deleted it): the attempt is recorded without the link to it, keeping its judgement.
    """
    if not Exercise.objects.filter(pk=exercise.pk).exists():
        raise exercise_not_found(exercise.pk)
    if not BotProfile.objects.filter(pk=learner.profile_id).exists():
        raise profile_not_found(user_id, exercise.exercise_language)
    verdict = replace(verdict, verdict_id=None)
    record(verdict=verdict)
    return verdict


def _record_attempt(
    *,
    exercise: Exercise,
    learner: Learner,
    user_id: int,
    submitted: dict[str, Any],
    canonical: CanonicalAnswer,
    verdict: Verdict,
    now: datetime,
) -> int:
    """Record the attempt and its verdict, bump the counters, move the card: one statement.

    The attempt INSERT carries the counter UPDATEs (exercise, verdict and, for a wrong answer or a
    mistake's card, the profile's errors in the set and its `review_due_at`) and the review card's
    upsert as CTEs, so all land or none does, in one round trip and
    without a BEGIN/COMMIT pair; its commit does not wait for the disk (`NO_FLUSH_WAIT`, while
    DATABASE_ASYNC_BOOKKEEPING_COMMIT is on).
    Returns the attempt's id.
    """
    original = {key: submitted[key] for key in canonical.answer if key in submitted}
    attempt = ExerciseAttempt(
        user_id=user_id,
        exercise_id=exercise.pk,
        verdict_id=verdict.verdict_id,
        answer=original,
        answer_text=canonical.text,
        answer_key=canonical.key,
        is_correct=verdict.is_correct,
        feedback=verdict.feedback,
        error_tags=verdict.error_tags,
        created_at=now,
    )
    counters = verdict_attempt_counted(exercise_id=exercise.pk, verdict_id=verdict.verdict_id)
    card = card_reviewed(
        user_id=user_id,
        exercise_id=exercise.pk,
        bot_id=exercise.exercise_language,
        previous=learner.card,
        correct=verdict.is_correct,
        now=now,
    )
    counters.append(card.statement)
    profile_counted = profile_answer_counted(
        profile_id=learner.profile_id,
        wrong=not verdict.is_correct,
        review_due=card.due if card.mistakes else None,
    )
    if profile_counted is not None:
        counters.append(profile_counted)
    attempt_id: int = run_with(insert_statement(attempt, flush_wait=False), *counters)
    return attempt_id


def _observe(
    exercise: Exercise, *, learner: Learner, verdict: Verdict, now: datetime, started: float
) -> None:
    labels = metrics.exercise_labels(
        exercise_type=exercise.exercise_type, level=exercise.language_level
    )
    metrics.exercise_attempt.labels(**labels).inc()
    served_at = learner.last_exercise_at
    if served_at is not None and served_at <= now:
        metrics.exercise_time_for_attempt.labels(**labels).observe(
            (now - served_at).total_seconds()
        )
    if not verdict.is_correct:
        metrics.exercise_error.labels(**labels).inc()
    metrics.exercise_validation_time.labels(**labels).observe(time.monotonic() - started)
