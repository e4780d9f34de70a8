"""Staff moderation of the exercise bank: the services behind the admin's moderation console.

Every decision goes through `exercise_change_status` (source `staff`), so it is recorded as an
`ExerciseReview` whose `analysis` names the action and the moderator (`note` says it in words).
Content edits are validated with the import rules (`validate_bank_items`), get a new content hash
(a collision with another exercise is rejected), keep the previous version in the history and
drop the stored verdicts that no longer hold. Attempts are never touched: they keep their copies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from duoniche.enums import ExerciseStatus, ExerciseType, ReviewSource
from exercises.answers import AnswerNotInOptions, AnswerShapeError, canonical_answer
from exercises.bank import BankItem, validate_bank_items
from exercises.models import Exercise, ExerciseAnswer, ExerciseReview
from exercises.personas import PERSONAS_BY_NAME
from exercises.services import _reference_feedback, exercise_change_status
from exercises.verdicts import clean_feedback

AUDIO_KEYS = ("audio_url", "audio_telegram_file_id")


def staff_name(user: AbstractBaseUser) -> str:
    """`staff:<username>`: the `created_by` of verdicts written in the admin."""
    return f"staff:{user.get_username()}"


def _record(
    *,
    exercise_id: int,
    new_status: str,
    action: str,
    user: AbstractBaseUser,
    now: datetime,
    note: str,
    analysis: dict[str, Any] | None = None,
) -> ExerciseReview:
    """A staff decision through the one status write path, naming the action and the moderator."""
    review = exercise_change_status(
        exercise_id=exercise_id,
        new_status=new_status,
        source=ReviewSource.STAFF,
        now=now,
        note=f"{note} by {user.get_username()}",
        analysis={"action": action, "moderator": user.get_username(), **(analysis or {})},
    )
    if review is None:
        raise ValidationError(f"Exercise #{exercise_id} does not exist.", code="not_found")
    return review


def _locked(exercise_id: int) -> Exercise:
    exercise = Exercise.objects.select_for_update().filter(pk=exercise_id).first()
    if exercise is None:
        raise ValidationError(f"Exercise #{exercise_id} does not exist.", code="not_found")
    return exercise


def _reference(exercise: Exercise) -> ExerciseAnswer | None:
    return exercise.verdicts.filter(is_reference=True).first()


# --- Validation with the import rules -----------------------------------------------------------


def _bank_item(
    *,
    exercise: Exercise,
    data: Any,
    correct_answer: Any,
    grammar_tags: Any,
    language_level: str,
    topic: str,
    status: str,
) -> tuple[BankItem, list[str]]:
    """Validate content as one imported item; raise `ValidationError` with every problem."""
    persona = exercise.persona if exercise.persona in PERSONAS_BY_NAME else None
    validation = validate_bank_items(
        [
            {
                "exercise_type": exercise.exercise_type,
                "exercise_language": exercise.exercise_language,
                "language_level": language_level,
                "topic": topic,
                "data": data,
                "correct_answer": correct_answer,
                "grammar_tags": grammar_tags,
                "status": status,
                "persona": persona,
            }
        ]
    )
    if validation.errors or not validation.items:
        raise ValidationError(
            [_unprefixed(error) for error in validation.errors] or ["The content is not valid."],
            code="invalid",
        )
    return validation.items[0], [_unprefixed(warning) for warning in validation.warnings]


def _unprefixed(message: str) -> str:
    """A bank message without its `item[0] ` / `warning: item[0] ` prefix (one item here)."""
    return message.removeprefix("warning: ").removeprefix("item[0] ").removeprefix("item[0]")


def _publishable_status(exercise_type: str, data: dict[str, Any]) -> str:
    """`published`, or `audio_generation_error` for a story without audio (the repair voices it)."""
    if exercise_type == ExerciseType.STORY_COMPREHENSION and not all(
        data.get(key) for key in AUDIO_KEYS
    ):
        return ExerciseStatus.AUDIO_GENERATION_ERROR
    return ExerciseStatus.PUBLISHED


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


def _answer_holds(exercise: Exercise, answer: Any) -> bool:
    """Whether a stored answer is still made only of the exercise's options or words."""
    if not isinstance(answer, dict):
        return False
    try:
        matched = canonical_answer(
            exercise_type=exercise.exercise_type,
            exercise_language=exercise.exercise_language,
            data=exercise.data,
            submitted=answer,
        )
    except (AnswerNotInOptions, AnswerShapeError):
        return False
    return matched.answer == answer


def answer_among_options(*, exercise: Exercise, answer: str | dict[str, Any]) -> bool:
    """Whether an answer (object or canonical text) is made of the exercise's options or words."""
    return _answer_holds(exercise, _answer_object(exercise.exercise_type, answer))


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
        _publishable_status(exercise.exercise_type, data)
        if isinstance(data, dict)
        else ExerciseStatus.PUBLISHED
    )
    item, warnings = _bank_item(
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
            f"Exercise #{other} already has this content (the same content hash).",
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
    exercise = _locked(exercise_id)
    reference = _reference(exercise)
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
        with transaction.atomic():
            exercise.save(update_fields=fields)
    except IntegrityError as exc:  # another exercise took the hash after our check
        raise ValidationError(
            "Another exercise already has this content (the same content hash).",
            code="duplicate",
        ) from exc
    dropped = _drop_stale_verdicts(exercise=exercise, keep_judgements=keep_judgements)
    _replace_reference(exercise=exercise, reference=reference, item=item, user=user, now=now)
    review = _record(
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
    feedback = _reference_feedback(exercise.exercise_type, item.data)
    if reference is not None and reference.answer_key == matched.key:
        reference.answer = matched.answer
        reference.feedback = feedback
        reference.save(update_fields=["answer", "feedback", "updated_at"])
        return
    if reference is not None:
        reference.delete()  # its attempts keep their copies
    ExerciseAnswer.objects.create(
        exercise=exercise,
        answer=matched.answer,
        answer_text=matched.text,
        answer_key=matched.key,
        is_correct=True,
        feedback=feedback,
        feedback_language="",
        is_reference=True,
        created_by=staff_name(user),
        created_at=now,
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
        if not keep_judgements or not _answer_holds(exercise, verdict.answer)
    ]
    if stale:
        ExerciseAnswer.objects.filter(pk__in=stale).delete()  # attempts: verdict set to null
    return len(stale)


# --- Accepted answers and verdicts --------------------------------------------------------------


@transaction.atomic
def exercise_add_accepted_answer(
    *, exercise_id: int, answer: str | dict[str, Any], user: AbstractBaseUser, now: datetime
) -> ExerciseAnswer:
    """Accept another answer as correct: a language-neutral correct verdict by the moderator.

    `answer` is an answer object or its canonical text (fill words joined with `;`); it must be
    made of the exercise's options or words. Judgements of that answer in any language are
    replaced, and the automatic verdicts (which list the correct answers) are dropped so they are
    rebuilt with the new list.
    """
    exercise = _locked(exercise_id)
    submitted = _answer_object(exercise.exercise_type, answer)
    try:
        matched = canonical_answer(
            exercise_type=exercise.exercise_type,
            exercise_language=exercise.exercise_language,
            data=exercise.data,
            submitted=submitted,
        )
    except (AnswerNotInOptions, AnswerShapeError) as exc:
        raise ValidationError(
            f"{answer!r} is not made of this exercise's options.", code="not_in_options"
        ) from exc
    if exercise.verdicts.filter(answer_key=matched.key, is_correct=True).exists():
        raise ValidationError(f"{matched.text!r} is already accepted.", code="already_correct")
    exercise.verdicts.filter(answer_key=matched.key).delete()
    _drop_automatic_verdicts(exercise.pk)
    verdict = ExerciseAnswer.objects.create(
        exercise=exercise,
        answer=matched.answer,
        answer_text=matched.text,
        answer_key=matched.key,
        is_correct=True,
        feedback="",
        feedback_language="",
        error_tags=None,
        created_by=staff_name(user),
        created_at=now,
    )
    _record(
        exercise_id=exercise.pk,
        new_status=exercise.status,
        action="accept_answer",
        user=user,
        now=now,
        note=f"accepted {matched.text!r}",
        analysis={"answer": matched.answer, "verdict_id": verdict.pk},
    )
    return verdict


def _drop_automatic_verdicts(exercise_id: int) -> None:
    """The correct answers changed: automatic verdicts list them in their feedback, so they go
    (the next wrong answer rebuilds its verdict with the new list)."""
    ExerciseAnswer.objects.filter(
        exercise_id=exercise_id, is_correct=False, created_by__startswith="auto:"
    ).delete()


def _answer_object(exercise_type: str, answer: str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(answer, dict):
        return answer
    if exercise_type == ExerciseType.FILL_IN_THE_BLANK:
        return {"words": answer.split(";")}
    return {"answer": answer}


@transaction.atomic
def verdict_staff_edit(
    *, verdict_id: int, is_correct: bool, feedback: str, user: AbstractBaseUser, now: datetime
) -> ExerciseAnswer:
    """Change a verdict's judgement or feedback (cleaned to the Telegram-HTML subset).

    `created_by` is kept and `updated_at` stamped; the reference answer stays correct.
    """
    verdict = ExerciseAnswer.objects.select_for_update().get(pk=verdict_id)
    if verdict.is_reference and not is_correct:
        raise ValidationError(
            "The reference answer is the exercise's correct answer; edit the exercise instead.",
            code="reference",
        )
    previous = {"is_correct": verdict.is_correct, "feedback": verdict.feedback}
    verdict.is_correct = is_correct
    verdict.feedback = clean_feedback(feedback)
    verdict.save(update_fields=["is_correct", "feedback", "updated_at"])
    if verdict.is_correct != previous["is_correct"]:
        _drop_automatic_verdicts(verdict.exercise_id)
    _record_verdict(verdict=verdict, action="verdict_edit", user=user, now=now, previous=previous)
    return verdict


@transaction.atomic
def verdict_staff_delete(*, verdict_id: int, user: AbstractBaseUser, now: datetime) -> None:
    """Delete a stored verdict (attempts keep their copies); never the reference answer."""
    verdict = ExerciseAnswer.objects.select_for_update().filter(pk=verdict_id).first()
    if verdict is None:
        return
    if verdict.is_reference:
        raise ValidationError("The reference answer cannot be deleted.", code="reference")
    previous = {
        "is_correct": verdict.is_correct,
        "feedback": verdict.feedback,
        "created_by": verdict.created_by,
    }
    verdict.delete()
    _record_verdict(verdict=verdict, action="verdict_delete", user=user, now=now, previous=previous)


def _record_verdict(
    *,
    verdict: ExerciseAnswer,
    action: str,
    user: AbstractBaseUser,
    now: datetime,
    previous: dict[str, Any],
) -> None:
    status = Exercise.objects.values_list("status", flat=True).get(pk=verdict.exercise_id)
    words = "edited" if action == "verdict_edit" else "deleted"
    _record(
        exercise_id=verdict.exercise_id,
        new_status=status,
        action=action,
        user=user,
        now=now,
        note=f"verdict {verdict.answer_text!r} ({verdict.feedback_language or 'any'}) {words}",
        analysis={"answer": verdict.answer_text, "previous": previous},
    )


# --- Status decisions ---------------------------------------------------------------------------


@transaction.atomic
def exercise_staff_publish(
    *, exercise_id: int, user: AbstractBaseUser, now: datetime
) -> ExerciseReview:
    """Publish as a moderator; the content must pass the import rules for a published item."""
    exercise = _locked(exercise_id)
    reference = _reference(exercise)
    if reference is None:
        raise ValidationError("The exercise has no reference answer.", code="invalid")
    _bank_item(
        exercise=exercise,
        data=exercise.data,
        correct_answer=reference.answer,
        grammar_tags=exercise.grammar_tags,
        language_level=exercise.language_level,
        topic=exercise.topic,
        status=ExerciseStatus.PUBLISHED,
    )
    return _record(
        exercise_id=exercise.pk,
        new_status=ExerciseStatus.PUBLISHED,
        action="publish",
        user=user,
        now=now,
        note="published",
    )


def exercise_staff_archive(
    *, exercise_id: int, user: AbstractBaseUser, now: datetime
) -> ExerciseReview:
    return _record(
        exercise_id=exercise_id,
        new_status=ExerciseStatus.ARCHIVED,
        action="archive",
        user=user,
        now=now,
        note="archived",
    )


def exercise_staff_send_to_review(
    *, exercise_id: int, user: AbstractBaseUser, now: datetime
) -> ExerciseReview:
    """Back to `pending_review`: the review processor runs the LLM review on it again."""
    return _record(
        exercise_id=exercise_id,
        new_status=ExerciseStatus.PENDING_REVIEW,
        action="send_to_review",
        user=user,
        now=now,
        note="sent to the LLM review",
    )


def exercise_staff_admin_review(
    *, exercise_id: int, user: AbstractBaseUser, now: datetime
) -> ExerciseReview:
    return _record(
        exercise_id=exercise_id,
        new_status=ExerciseStatus.PENDING_ADMIN_REVIEW,
        action="admin_review",
        user=user,
        now=now,
        note="marked for admin review",
    )


@transaction.atomic
def exercise_staff_regenerate_audio(
    *, exercise_id: int, user: AbstractBaseUser, now: datetime
) -> ExerciseReview:
    """A story to `audio_generation_error`: the refill job's repair voices it and publishes it.

    The current audio stays until the repair replaces it.
    """
    exercise = _locked(exercise_id)
    if exercise.exercise_type != ExerciseType.STORY_COMPREHENSION:
        raise ValidationError("Only stories have audio.", code="not_a_story")
    return _record(
        exercise_id=exercise.pk,
        new_status=ExerciseStatus.AUDIO_GENERATION_ERROR,
        action="regenerate_audio",
        user=user,
        now=now,
        note="audio regeneration requested",
    )


StaffAction = Callable[..., ExerciseReview]

#: The status decisions of the admin, by action name (bulk actions and the page's buttons).
STAFF_ACTIONS: dict[str, tuple[str, StaffAction]] = {
    "publish": ("Publish", exercise_staff_publish),
    "archive": ("Archive", exercise_staff_archive),
    "send_to_review": ("Re-run the LLM review (pending_review)", exercise_staff_send_to_review),
    "admin_review": ("Mark for admin review", exercise_staff_admin_review),
    "regenerate_audio": ("Regenerate the story audio", exercise_staff_regenerate_audio),
}
