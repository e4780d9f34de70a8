"""Writes to the exercise bank. Every interface (import, generation, admin) goes through here."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from duoniche.enums import ExerciseSource, ExerciseStatus, ExerciseType, ReviewSource
from duoniche.rows import Statement
from exercises.answers import CanonicalAnswer
from exercises.bank import BankItem
from exercises.content import answer_text, text_hash
from exercises.drafts import Draft
from exercises.models import Exercise, ExerciseReview
from exercises.verdicts import verdict_reference_create, verdict_reference_feedback_set


@transaction.atomic
def exercise_create(
    *,
    exercise_type: str,
    exercise_language: str,
    language_level: str,
    topic: str,
    data: dict[str, Any],
    correct_answer: dict[str, Any],
    grammar_tags: dict[str, list[str]],
    status: str,
    persona: str | None,
    content_hash: str,
    source: str,
    created_by: str,
    now: datetime,
) -> Exercise:
    """Create an exercise and its reference verdict (the canonical correct answer) together."""
    exercise = Exercise.objects.create(
        exercise_type=exercise_type,
        exercise_language=exercise_language,
        language_level=language_level,
        topic=topic,
        data=data,
        grammar_tags=grammar_tags,
        status=status,
        status_changed_at=now,
        persona=persona,
        content_hash=content_hash,
        source=source,
        created_at=now,
    )
    text = answer_text(exercise_type, correct_answer)
    verdict_reference_create(
        exercise=exercise,
        answer=CanonicalAnswer(answer=correct_answer, text=text, key=text_hash(text)),
        feedback=reference_feedback(exercise_type, data),
        created_by=created_by,
        now=now,
    )
    return exercise


def reference_feedback(exercise_type: str, data: dict[str, Any]) -> str:
    if exercise_type == ExerciseType.CHOOSE_ACCENT:
        return str(data.get("meaning") or "")
    return ""


@dataclass
class ImportSummary:
    created: int = 0
    updated: int = 0
    unchanged: int = 0


class _DryRunRollback(Exception):
    pass


def exercise_bank_import(
    *,
    items: Iterable[BankItem],
    update: bool = False,
    dry_run: bool = False,
    on_item: Callable[[BankItem, str], None] | None = None,
) -> ImportSummary:
    """Import validated bank items in one transaction; idempotent through the content hash.

    Existing exercises are left alone unless `update` is set; `dry_run` rolls everything back and
    reports what would have happened.
    """
    items = list(items)
    summary = ImportSummary()
    now = timezone.now()
    try:
        with transaction.atomic():
            existing = {
                exercise.content_hash: exercise
                for exercise in Exercise.objects.filter(
                    content_hash__in=[item.content_hash for item in items]
                )
            }
            for item in items:
                outcome = _import_item(item, existing.get(item.content_hash), update, now)
                setattr(summary, outcome, getattr(summary, outcome) + 1)
                if on_item is not None:
                    on_item(item, outcome)
            if dry_run:
                raise _DryRunRollback
    except _DryRunRollback:
        pass
    return summary


def _import_item(item: BankItem, exercise: Exercise | None, update: bool, now: datetime) -> str:
    if exercise is None:
        try:
            with transaction.atomic():  # savepoint: a concurrent import may have won the key
                exercise_create(
                    exercise_type=item.exercise_type,
                    exercise_language=item.exercise_language,
                    language_level=item.language_level,
                    topic=item.topic,
                    data=item.data,
                    correct_answer=item.correct_answer,
                    grammar_tags=item.grammar_tags,
                    status=item.status,
                    persona=item.persona,
                    content_hash=item.content_hash,
                    source=ExerciseSource.IMPORTED,
                    created_by="import",
                    now=now,
                )
        except IntegrityError:
            return "unchanged"
        return "created"
    if not update:
        return "unchanged"
    return "updated" if _update_from_item(exercise, item, now) else "unchanged"


def _update_from_item(exercise: Exercise, item: BankItem, now: datetime) -> bool:
    """Apply the mutable fields of `item`; return whether anything changed."""
    changed: list[str] = []
    for field in ("language_level", "topic", "grammar_tags", "persona"):
        if getattr(exercise, field) != getattr(item, field):
            setattr(exercise, field, getattr(item, field))
            changed.append(field)
    if exercise.status != item.status:
        exercise.status = item.status
        exercise.status_changed_at = now
        changed += ["status", "status_changed_at"]
    data = dict(exercise.data)
    if item.exercise_type == ExerciseType.CHOOSE_ACCENT:
        data["meaning"] = item.data["meaning"]
    if item.exercise_type == ExerciseType.STORY_COMPREHENSION:
        for key in ("audio_url", "audio_telegram_file_id"):
            if item.data[key]:
                data[key] = item.data[key]
    if data != exercise.data:
        exercise.data = data
        changed.append("data")
    if not changed:
        return False
    exercise.save(update_fields=[*changed, "updated_at"])
    if item.exercise_type == ExerciseType.CHOOSE_ACCENT:
        verdict_reference_feedback_set(
            exercise_id=exercise.pk, feedback=item.data["meaning"] or "", now=now
        )
    return True


class DuplicateExercise(Exception):
    """An exercise with the same content hash already exists (nothing was saved)."""


@transaction.atomic
def exercise_save_generated(
    *,
    draft: Draft,
    status: str,
    content_hash: str,
    issues: Sequence[str],
    analysis: dict[str, Any] | None,
    now: datetime,
) -> Exercise:
    """Save a generated exercise with its reference verdict and the assessor's review, together.

    The reference verdict is `created_by="LLM"`. With `analysis` (every type but choose_accent),
    an `ExerciseReview` (source `generation_assessor`) records it; a rejected exercise also gets a
    `comments` line with the UTC time and the issues. Raises `DuplicateExercise` when the content
    hash exists (the transaction is rolled back to before the insert).
    """
    try:
        with transaction.atomic():  # savepoint: a duplicate leaves the caller's transaction usable
            exercise = exercise_create(
                exercise_type=draft.exercise_type,
                exercise_language=draft.exercise_language,
                language_level=draft.language_level,
                topic=draft.topic,
                data=draft.data,
                correct_answer=draft.correct_answer,
                grammar_tags=draft.grammar_tags,
                status=status,
                persona=draft.persona,
                content_hash=content_hash,
                source=ExerciseSource.GENERATED,
                created_by="LLM",
                now=now,
            )
    except IntegrityError as exc:
        if Exercise.objects.filter(content_hash=content_hash).exists():
            raise DuplicateExercise(content_hash) from exc
        raise
    if analysis is not None:
        ExerciseReview.objects.create(
            exercise=exercise,
            created_at=now,
            source=ReviewSource.GENERATION_ASSESSOR,
            previous_status=status,
            new_status=status,
            analysis=analysis,
            note=", ".join(issues),
        )
    if status == ExerciseStatus.REJECTED_BY_ASSESSOR:
        timestamp = now.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        line = f"{timestamp} quality_assessor: {', '.join(issues)}"
        exercise.comments = f"{exercise.comments}\n{line}" if exercise.comments else line
        exercise.save(update_fields=["comments", "updated_at"])
    return exercise


def exercise_review_finished(*, exercise_id: int, comments: str, now: datetime) -> None:
    """The review processor is done with an exercise: its notes, and when (even on a hand-over)."""
    Exercise.objects.filter(pk=exercise_id).update(comments=comments, last_reviewed_at=now)


def exercise_save_content(*, exercise: Exercise, fields: list[str]) -> None:
    """Store a staff edit that exercises/staff_edit.py checked (`fields` of `exercise`).

    Raises IntegrityError when another exercise took the new content hash meanwhile.
    """
    with transaction.atomic():
        exercise.save(update_fields=fields)


def exercise_attempt_counted(*, exercise_id: int) -> Statement:
    """The increment counting one recorded attempt on the exercise, run inside the attempt's write.

    A statement, not a write: learning's validation runs it with the attempt INSERT
    (`duoniche.rows.run_with`), so both land or neither does, in one round trip.
    """
    return Statement(
        f"UPDATE {Exercise._meta.db_table} SET attempts_count = attempts_count + 1 "  # noqa: S608
        "WHERE id = %s",
        (exercise_id,),
    )


#: Leaving one of these statuses means a review finished (quality stats restart after it).
REVIEW_STATUSES = frozenset({ExerciseStatus.PENDING_REVIEW, ExerciseStatus.PENDING_ADMIN_REVIEW})


def exercise_change_status(
    *,
    exercise_id: int,
    new_status: str,
    source: str,
    now: datetime,
    note: str = "",
    stats: dict[str, Any] | None = None,
    analysis: dict[str, Any] | None = None,
    expected_status: str | None = None,
) -> ExerciseReview | None:
    """Move an exercise to `new_status` and record the decision as an `ExerciseReview`.

    The one write path for status changes by jobs (quality monitor, review processor) and staff.
    With `expected_status`, nothing happens unless the exercise is still in it (a concurrent
    decision won); returns None then. Stamps `status_changed_at`, and `last_reviewed_at` when the
    exercise leaves a review status. A decision that keeps the status is still recorded.
    """
    with transaction.atomic():
        exercise = Exercise.objects.select_for_update().filter(pk=exercise_id).first()
        if exercise is None or (expected_status is not None and exercise.status != expected_status):
            return None
        previous = exercise.status
        fields = ["updated_at"]
        if new_status != previous:
            exercise.status = new_status
            exercise.status_changed_at = now
            fields += ["status", "status_changed_at"]
        if previous in REVIEW_STATUSES and new_status not in REVIEW_STATUSES:
            exercise.last_reviewed_at = now
            fields.append("last_reviewed_at")
        exercise.save(update_fields=fields)
        return ExerciseReview.objects.create(
            exercise=exercise,
            created_at=now,
            source=source,
            previous_status=previous,
            new_status=exercise.status,
            stats=stats or {},
            analysis=analysis or {},
            note=note,
        )


# --- story audio repair (exercises/audio.py voices a story; these are its status changes) ---

#: A repair claimed this long ago has died with its worker: the story goes back to the queue.
STALE_REPAIR_AGE = timedelta(hours=1)


@transaction.atomic
def story_repair_claim(*, bot_id: str, now: datetime) -> Exercise | None:
    """Take the oldest story of `bot_id` without audio: -> processing_error_retry, stamped `now`."""
    story = (
        Exercise.objects.select_for_update(skip_locked=True)
        .filter(
            exercise_language=bot_id,
            exercise_type=ExerciseType.STORY_COMPREHENSION,
            status=ExerciseStatus.AUDIO_GENERATION_ERROR,
        )
        .order_by("created_at", "pk")
        .first()
    )
    if story is None:
        return None
    story.status = ExerciseStatus.PROCESSING_ERROR_RETRY
    story.status_changed_at = now
    story.save(update_fields=["status", "status_changed_at", "updated_at"])
    return story


@transaction.atomic
def story_repair_complete(
    *, story_id: int, claimed_at: datetime, audio_url: str, audio_file_id: str, now: datetime
) -> bool:
    """Publish the claimed story with its audio, if it is still ours (conditional on the claim)."""
    story = (
        Exercise.objects.select_for_update()
        .filter(
            pk=story_id,
            status=ExerciseStatus.PROCESSING_ERROR_RETRY,
            status_changed_at=claimed_at,
        )
        .first()
    )
    if story is None:
        return False
    story.data = {**story.data, "audio_url": audio_url, "audio_telegram_file_id": audio_file_id}
    story.status = ExerciseStatus.PUBLISHED
    story.status_changed_at = now
    story.save(update_fields=["data", "status", "status_changed_at", "updated_at"])
    return True


def story_repair_release(*, story_id: int, claimed_at: datetime, now: datetime) -> bool:
    """Back to audio_generation_error after a failed repair, if the claim is still ours."""
    return bool(
        Exercise.objects.filter(
            pk=story_id,
            status=ExerciseStatus.PROCESSING_ERROR_RETRY,
            status_changed_at=claimed_at,
        ).update(
            status=ExerciseStatus.AUDIO_GENERATION_ERROR, status_changed_at=now, updated_at=now
        )
    )


def stale_repairs_reset(*, now: datetime) -> int:
    """Stories stuck in processing_error_retry for over an hour go back (docs/jobs.md)."""
    return Exercise.objects.filter(
        exercise_type=ExerciseType.STORY_COMPREHENSION,
        status=ExerciseStatus.PROCESSING_ERROR_RETRY,
        status_changed_at__lt=now - STALE_REPAIR_AGE,
    ).update(status=ExerciseStatus.AUDIO_GENERATION_ERROR, status_changed_at=now, updated_at=now)
