"""The `review_processor` job body (docs/jobs.md): a second opinion on flagged exercises.

Per run, up to `REVIEW_PROCESSOR_BATCH_SIZE` `pending_review` exercises, oldest
`status_changed_at` first:

1. their verdict rows (all-time `attempts_count`) are loaded in one query for the whole batch and
   summarised per exercise by (answer text, correct): counts summed, the feedback of the first
   English variant (else the first one) kept, incorrect answers sorted by count;
2. no verdict at all, or no correct one → `archived` without asking the model;
3. otherwise the pending-review assessor (outside any transaction) returns a
   `PendingExerciseAnalysis` (choose-accent: the word's commonness, mapped onto one);
4. the decision table (`review_decision`) gives the new status, written in a short transaction of
   its own through `exercise_change_status` (source `review_processor`, `analysis` = the
   assessor's output, a one-line `note`), with a block appended to `comments` and
   `last_reviewed_at = now` (also when the decision hands over to staff).

Nothing changes without an assessment: with the `assessment` purpose disabled (no LLM, budget
exhausted) the run does nothing and says why; an assessor error leaves the exercise
`pending_review`, with a review that says so, and the run goes on. Idempotent: every decided
exercise leaves `pending_review`, and each write re-checks the status under the row lock
(`select_for_update(skip_locked=True)`), so a concurrent forced run never decides twice.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import transaction

from duoniche import llm, llm_budget
from duoniche.enums import ExerciseStatus, LLMPurpose, ReviewSource
from exercises.models import Exercise, ExerciseAnswer
from exercises.prompts.review import (
    PendingExerciseAnalysis,
)
from exercises.review_assessor import answer_summaries, assess_pending_exercise
from exercises.services import exercise_change_status, exercise_review_finished

logger = logging.getLogger(__name__)

NO_ANSWERS = "no answers with counts"
NO_CORRECT_ANSWERS = "no correct reference answers"
ERROR_MESSAGE_MAX = 500

PUBLISHED = ExerciseStatus.PUBLISHED.value
ARCHIVED = ExerciseStatus.ARCHIVED.value
PENDING_REVIEW = ExerciseStatus.PENDING_REVIEW.value
PENDING_ADMIN_REVIEW = ExerciseStatus.PENDING_ADMIN_REVIEW.value


@dataclass(frozen=True)
class Decision:
    new_status: str
    note: str


# --- the decision table -------------------------------------------------------------------------


def review_decision(analysis: PendingExerciseAnalysis) -> Decision:
    """The decision table (docs/jobs.md): the first matching row wins; actions upper-cased."""
    action = analysis.suggested_action.upper()
    flawed = analysis.is_exercise_flawed
    if analysis.suggested_revision:
        return Decision(PENDING_ADMIN_REVIEW, f"revision suggested ({analysis.suggested_action})")
    if "PUBLISH_OK" in action:
        return Decision(PUBLISHED, "assessor: the exercise is fine")
    if "KEEP_AS_IS_COMPLEX" in action and not flawed:
        return Decision(PUBLISHED, "assessor: complex but correct")
    if flawed:
        return Decision(ARCHIVED, f"assessor: flawed ({analysis.suggested_action})")
    if "ARCHIVE" in action:
        return Decision(ARCHIVED, "assessor: archive")
    if "PENDING_ADMIN_REVIEW" in action:
        return Decision(PENDING_ADMIN_REVIEW, "assessor: needs staff review")
    return Decision(ARCHIVED, f"no clear decision ({analysis.suggested_action}): archived")


# --- writing a decision -------------------------------------------------------------------------


def _utc_stamp(now: datetime) -> str:
    return now.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def comments_block(
    *, now: datetime, analysis: PendingExerciseAnalysis | None, new_status: str, note: str
) -> str:
    """The audit block appended to `comments` (docs/jobs.md), real UTC time."""
    lines = ["---", f"{_utc_stamp(now)} review_processor"]
    if analysis is None:
        lines.append(f"conclusion: {note}")
    else:
        lines += [
            f"conclusion: {analysis.primary_reason_for_user_errors}",
            f"suggested_action: {analysis.suggested_action}",
            f"is_flawed: {str(analysis.is_exercise_flawed).lower()}",
            f"is_complex_but_correct: {str(analysis.is_complex_but_correct).lower()}",
        ]
        if analysis.suggested_revision:
            lines.append(f"suggested_revision: {analysis.suggested_revision}")
    lines.append(f"new_status: {new_status}")
    return "\n".join(lines)


def _decide(
    *,
    exercise_id: int,
    decision: Decision,
    analysis: PendingExerciseAnalysis | None,
    stored_analysis: dict[str, Any],
    now: datetime,
) -> bool:
    """Write one decision in its own transaction; False if the exercise left the queue meanwhile."""
    with transaction.atomic():
        locked = (
            Exercise.objects.select_for_update(skip_locked=True)
            .filter(pk=exercise_id, status=PENDING_REVIEW)
            .only("id", "comments")
            .first()
        )
        if locked is None:
            return False
        review = exercise_change_status(
            exercise_id=exercise_id,
            new_status=decision.new_status,
            source=ReviewSource.REVIEW_PROCESSOR,
            now=now,
            note=decision.note,
            analysis=stored_analysis,
            expected_status=PENDING_REVIEW,
        )
        if review is None:
            return False
        block = comments_block(
            now=now, analysis=analysis, new_status=decision.new_status, note=decision.note
        )
        comments = f"{locked.comments}\n{block}" if locked.comments else block
        # The review is finished even when it hands over to staff (`pending_admin_review`).
        exercise_review_finished(exercise_id=exercise_id, comments=comments, now=now)
    return True


def _record_error(*, exercise_id: int, exc: Exception, now: datetime) -> None:
    """The exercise stays `pending_review`; a review records why (docs/jobs.md)."""
    exercise_change_status(
        exercise_id=exercise_id,
        new_status=PENDING_REVIEW,
        source=ReviewSource.REVIEW_PROCESSOR,
        now=now,
        note=f"assessment error: {type(exc).__name__}",
        analysis={"error_type": type(exc).__name__, "error": str(exc)[:ERROR_MESSAGE_MAX]},
        expected_status=PENDING_REVIEW,
    )


# --- the job ------------------------------------------------------------------------------------


def _queue() -> list[Exercise]:
    return list(
        Exercise.objects.filter(status=PENDING_REVIEW).order_by("status_changed_at", "id")[
            : int(settings.REVIEW_PROCESSOR_BATCH_SIZE)
        ]
    )


def _verdicts_by_exercise(exercise_ids: list[int]) -> dict[int, list[ExerciseAnswer]]:
    """Every verdict of the batch in one query, per exercise in creation order."""
    verdicts: dict[int, list[ExerciseAnswer]] = defaultdict(list)
    for verdict in ExerciseAnswer.objects.filter(exercise_id__in=exercise_ids).order_by(
        "exercise_id", "created_at", "id"
    ):
        verdicts[verdict.exercise_id].append(verdict)
    return verdicts


def review_processor(*, now: datetime, dry_run: bool = False) -> dict[str, Any]:
    """Review one batch of `pending_review` exercises (docs/jobs.md); `dry_run` shows the queue."""
    batch = _queue()
    reason = llm_budget.disabled_reason(LLMPurpose.ASSESSMENT)
    stats: dict[str, Any] = {
        "dry_run": dry_run,
        "queue": [exercise.pk for exercise in batch],
        "skipped_reason": reason,
        "reviewed": 0,
        "errors": 0,
        "skipped": 0,
        "decisions": {},
        "exercises": [],
    }
    if reason is not None:
        if batch:
            logger.warning(
                "review processor skipped (%d exercises waiting): %s", len(batch), reason
            )
        return stats
    if dry_run:
        return stats

    verdicts = _verdicts_by_exercise([exercise.pk for exercise in batch])
    for exercise in batch:
        reason = llm_budget.disabled_reason(LLMPurpose.ASSESSMENT)
        if reason is not None:  # e.g. the budget ran out during this run
            stats["skipped_reason"] = reason
            logger.warning("review processor stopped: %s", reason)
            break
        entry = _review_one(exercise=exercise, verdicts=verdicts.get(exercise.pk, []), now=now)
        stats["exercises"].append(entry)
        outcome = entry["outcome"]
        if outcome == "decided":
            stats["reviewed"] += 1
            status = entry["new_status"]
            stats["decisions"][status] = stats["decisions"].get(status, 0) + 1
        else:
            stats[outcome] += 1
    return stats


def _review_one(
    *, exercise: Exercise, verdicts: list[ExerciseAnswer], now: datetime
) -> dict[str, Any]:
    entry: dict[str, Any] = {"exercise_id": exercise.pk}
    correct, incorrect = answer_summaries(verdicts)
    analysis: PendingExerciseAnalysis | None = None
    stored: dict[str, Any] = {}
    if not verdicts:
        decision = Decision(ARCHIVED, NO_ANSWERS)
    elif not correct:
        decision = Decision(ARCHIVED, NO_CORRECT_ANSWERS)
    else:
        try:
            analysis, stored = assess_pending_exercise(
                exercise=exercise, correct=correct, incorrect=incorrect
            )
        except Exception as exc:  # any assessor failure leaves the exercise pending
            if isinstance(exc, llm.LLMError):
                logger.warning("review of exercise %s failed: %s", exercise.pk, exc)
            else:
                logger.exception("review of exercise %s failed", exercise.pk)
            _record_error(exercise_id=exercise.pk, exc=exc, now=now)
            return {**entry, "outcome": "errors", "error": type(exc).__name__}
        decision = review_decision(analysis)
    written = _decide(
        exercise_id=exercise.pk,
        decision=decision,
        analysis=analysis,
        stored_analysis=stored,
        now=now,
    )
    if not written:
        return {**entry, "outcome": "skipped"}
    logger.info("exercise %s reviewed: %s (%s)", exercise.pk, decision.new_status, decision.note)
    return {**entry, "outcome": "decided", "new_status": decision.new_status, "note": decision.note}
