"""A moderator's content edit of an exercise: validated like an import, then published.

The edit gets a new content hash (a collision with another exercise is rejected), keeps the
previous version in the review history, replaces the reference verdict and drops the stored
verdicts that no longer hold. Attempts are never touched: they keep their copies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from duoniche.enums import ExerciseStatus, ExerciseType
from exercises.answers import canonical_answer
from exercises.bank import BankItem
from exercises.models import Exercise, ExerciseAnswer, ExerciseReview
from exercises.moderation import (
    AUDIO_KEYS,
    answer_holds,
    bank_item_check,
    exercise_locked,
    publishable_status,
    reference_verdict,
    staff_name,
    staff_record,
)
from exercises.services import exercise_save_content, reference_feedback
from exercises.verdicts import verdict_reference_replace, verdicts_delete


def _judged_context(exercise_type: str, data: dict[str, Any], correct: dict[str, Any]) -> Any:
    """What a stored verdict was judged against, besides its own answer.

    Verdict feedback quotes the sentence or story and the correct answer (and, for accent, the
    meaning); when any of these changes, no stored judgement of another answer still holds.
    """
    if exercise_type == ExerciseType.FILL_IN_THE_BLANK:
        return (data.get("text_with_blanks"), list(correct.get("words") or []))
    if exercise_type == ExerciseType.CHOOSE_ACCENT:
        return (correct.get("answer"), data.get("meaning"))
    if exercise_type == ExerciseType.STORY_COMPREHENSION:
        return (correct.get("answer"), data.get("content_text"))
    return correct.get("answer")


def exercise_staff_edit_check(
    *,
    exercise: Exercise,
    data: Any,
    correct_answer: Any,
    grammar_tags: Any,
    language_level: str | None = None,
    topic: str | None = None,
) -> tuple[BankItem, list[str]]:
    """Validate an edit as the import does and check its hash; no write.

    Returns the normalised item and the warnings. For a story the audio fields are generated
    content: the stored ones are kept, or emptied when the story text changes (it needs new audio).
    Raises `ValidationError` (codes `invalid`, `duplicate`).
    """
    if exercise.exercise_type == ExerciseType.STORY_COMPREHENSION and isinstance(data, dict):
        text_changed = data.get("content_text") != exercise.data.get("content_text")
        data = {
            **{key: value for key, value in data.items() if key not in AUDIO_KEYS},
            **{key: "" if text_changed else exercise.data.get(key) or "" for key in AUDIO_KEYS},
        }
    status = (
        publishable_status(exercise.exercise_type, data)
        if isinstance(data, dict)
        else ExerciseStatus.PUBLISHED
    )
    item, warnings = bank_item_check(
        exercise=exercise,
        data=data,
        correct_answer=correct_answer,
        grammar_tags=grammar_tags,
        language_level=language_level or exercise.language_level,
        topic=topic or exercise.topic,
        status=status,
    )
    other = (
        Exercise.objects.filter(content_hash=item.content_hash)
        .exclude(pk=exercise.pk)
        .values_list("pk", flat=True)
        .first()
    )
    if other is not None:
        raise ValidationError(
            _("Exercise #%(id)s already has this content (the same content hash).") % {"id": other},
            code="duplicate",
        )
    return item, warnings


@dataclass
class StaffEdit:
    review: ExerciseReview
    warnings: list[str] = field(default_factory=list)
    dropped_verdicts: int = 0


@transaction.atomic
def exercise_staff_edit(
    *,
    exercise_id: int,
    data: Any,
    correct_answer: Any,
    grammar_tags: Any,
    user: AbstractBaseUser,
    now: datetime,
    language_level: str | None = None,
    topic: str | None = None,
) -> StaffEdit:
    """Replace an exercise's content as a moderator, and publish it.

    Validated like an import; the content hash is recomputed (a collision is a `ValidationError`);
    the review history keeps the previous version; the reference verdict is replaced; stored
    verdicts that no longer hold are deleted (attempts keep their copies). A story whose text
    changed loses its audio and goes to `audio_generation_error`, which the refill's repair voices
    and then publishes. Quality stats restart (`last_reviewed_at = now`) when the content changed.
    """
    exercise = exercise_locked(exercise_id)
    reference = reference_verdict(exercise)
    previous = {
        "data": exercise.data,
        "correct_answer": reference.answer if reference is not None else None,
        "grammar_tags": exercise.grammar_tags,
        "language_level": exercise.language_level,
        "topic": exercise.topic,
        "content_hash": exercise.content_hash,
    }
    item, warnings = exercise_staff_edit_check(
        exercise=exercise,
        data=data,
        correct_answer=correct_answer,
        grammar_tags=grammar_tags,
        language_level=language_level,
        topic=topic,
    )
    content_changed = item.content_hash != exercise.content_hash
    keep_judgements = _judged_context(
        exercise.exercise_type, exercise.data, previous["correct_answer"] or {}
    ) == _judged_context(exercise.exercise_type, item.data, item.correct_answer)
    exercise.data = item.data
    exercise.grammar_tags = item.grammar_tags
    exercise.language_level = item.language_level
    exercise.topic = item.topic
    exercise.content_hash = item.content_hash
    fields = ["data", "grammar_tags", "language_level", "topic", "content_hash", "updated_at"]
    if content_changed:
        exercise.last_reviewed_at = now
        fields.append("last_reviewed_at")
    try:
        exercise_save_content(exercise=exercise, fields=fields)
    except IntegrityError as exc:  # another exercise took the hash after our check
        raise ValidationError(
            _("Another exercise already has this content (the same content hash)."),
            code="duplicate",
        ) from exc
    dropped = _drop_stale_verdicts(exercise=exercise, keep_judgements=keep_judgements)
    _replace_reference(exercise=exercise, reference=reference, item=item, user=user, now=now)
    review = staff_record(
        exercise_id=exercise.pk,
        new_status=item.status,
        action="edit",
        user=user,
        now=now,
        note="edited" + (" and published" if item.status == ExerciseStatus.PUBLISHED else ""),
        analysis={"previous": previous, "dropped_verdicts": dropped},
    )
    return StaffEdit(review=review, warnings=warnings, dropped_verdicts=dropped)


def _replace_reference(
    *,
    exercise: Exercise,
    reference: ExerciseAnswer | None,
    item: BankItem,
    user: AbstractBaseUser,
    now: datetime,
) -> None:
    """The new correct answer becomes the reference verdict (the row is kept if it is the same)."""
    matched = canonical_answer(
        exercise_type=exercise.exercise_type,
        exercise_language=exercise.exercise_language,
        data=item.data,
        submitted=item.correct_answer,
    )
    verdict_reference_replace(
        exercise=exercise,
        reference=reference,
        answer=matched,
        feedback=reference_feedback(exercise.exercise_type, item.data),
        created_by=staff_name(user),
        now=now,
    )


def _drop_stale_verdicts(*, exercise: Exercise, keep_judgements: bool) -> int:
    """Delete the non-reference verdicts that no longer hold; return how many.

    Without `keep_judgements` (the sentence, story, correct answer or meaning changed) none of
    them holds; otherwise those whose answer is no longer among the options or words. (The
    correct answer is part of the judged context, so a new reference never meets a judgement of
    its own answer.)
    """
    stale = [
        verdict.pk
        for verdict in exercise.verdicts.filter(is_reference=False).only("pk", "answer")
        if not keep_judgements or not answer_holds(exercise, verdict.answer)
    ]
    verdicts_delete(stale)  # their attempts keep their copies
    return len(stale)
