"""Staff moderation of the exercise bank: the status decisions of the admin's moderation console.

Every decision goes through `exercise_change_status` (source `staff`), so it is recorded as an
`ExerciseReview` whose `analysis` names the action and the moderator (`note` says it in words).
`STAFF_ACTIONS` says which decision applies to which exercise (no "publish" on a published one)
and which cannot run at all now (the LLM review without an LLM). Content edits are in
`exercises.staff_edit`, accepted answers and verdict fixes in `exercises.staff_verdicts`; both
validate with the import rules through `bank_item_check` here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from duoniche import llm_budget
from duoniche.enums import ExerciseStatus, ExerciseType, LLMPurpose, ReviewSource
from exercises.answers import AnswerNotInOptions, AnswerShapeError, canonical_answer
from exercises.bank import BankItem, validate_bank_items
from exercises.models import Exercise, ExerciseAnswer, ExerciseReview
from exercises.personas import PERSONAS_BY_NAME
from exercises.services import exercise_change_status

if TYPE_CHECKING:
    from django.utils.functional import _StrPromise

AUDIO_KEYS = ("audio_url", "audio_telegram_file_id")


def staff_name(user: AbstractBaseUser) -> str:
    """`staff:<username>`: the `created_by` of verdicts written in the admin."""
    return f"staff:{user.get_username()}"


def staff_record(
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
        raise ValidationError(
            _("Exercise #%(id)s does not exist.") % {"id": exercise_id}, code="not_found"
        )
    return review


def exercise_locked(exercise_id: int) -> Exercise:
    exercise = Exercise.objects.select_for_update().filter(pk=exercise_id).first()
    if exercise is None:
        raise ValidationError(
            _("Exercise #%(id)s does not exist.") % {"id": exercise_id}, code="not_found"
        )
    return exercise


def reference_verdict(exercise: Exercise) -> ExerciseAnswer | None:
    return exercise.verdicts.filter(is_reference=True).first()


# --- Validation with the import rules -----------------------------------------------------------


def bank_item_check(
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
            [_unprefixed(error) for error in validation.errors] or [_("The content is not valid.")],
            code="invalid",
        )
    return validation.items[0], [_unprefixed(warning) for warning in validation.warnings]


def _unprefixed(message: str) -> str:
    """A bank message without its `item[0] ` / `warning: item[0] ` prefix (one item here)."""
    return message.removeprefix("warning: ").removeprefix("item[0] ").removeprefix("item[0]")


def publishable_status(exercise_type: str, data: dict[str, Any]) -> str:
    """`published`, or `audio_generation_error` for a story without audio (the repair voices it)."""
    if exercise_type == ExerciseType.STORY_COMPREHENSION and not all(
        data.get(key) for key in AUDIO_KEYS
    ):
        return ExerciseStatus.AUDIO_GENERATION_ERROR
    return ExerciseStatus.PUBLISHED


def answer_holds(exercise: Exercise, answer: Any) -> bool:
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
    return answer_holds(exercise, answer_object(exercise.exercise_type, answer))


def answer_object(exercise_type: str, answer: str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(answer, dict):
        return answer
    if exercise_type == ExerciseType.FILL_IN_THE_BLANK:
        return {"words": answer.split(";")}
    return {"answer": answer}


# --- Status decisions ---------------------------------------------------------------------------


def _decide(
    *, exercise: Exercise, new_status: str, action: str, user: AbstractBaseUser, now: datetime
) -> ExerciseReview:
    """A decision on a locked exercise; refused when it is already in `new_status`."""
    if exercise.status == new_status:
        raise ValidationError(
            _("Exercise #%(id)s is already %(status)s.")
            % {"id": exercise.pk, "status": ExerciseStatus(new_status).label.lower()},
            code="no_change",
        )
    return staff_record(
        exercise_id=exercise.pk,
        new_status=new_status,
        action=action,
        user=user,
        now=now,
        note=STAFF_NOTES[action],
    )


@transaction.atomic
def exercise_staff_publish(
    *, exercise_id: int, user: AbstractBaseUser, now: datetime
) -> ExerciseReview:
    """Publish as a moderator; the content must pass the import rules for a published item."""
    exercise = exercise_locked(exercise_id)
    reference = reference_verdict(exercise)
    if reference is None:
        raise ValidationError(_("The exercise has no reference answer."), code="invalid")
    if exercise.status != ExerciseStatus.PUBLISHED:
        bank_item_check(
            exercise=exercise,
            data=exercise.data,
            correct_answer=reference.answer,
            grammar_tags=exercise.grammar_tags,
            language_level=exercise.language_level,
            topic=exercise.topic,
            status=ExerciseStatus.PUBLISHED,
        )
    return _decide(
        exercise=exercise, new_status=ExerciseStatus.PUBLISHED, action="publish", user=user, now=now
    )


@transaction.atomic
def exercise_staff_archive(
    *, exercise_id: int, user: AbstractBaseUser, now: datetime
) -> ExerciseReview:
    return _decide(
        exercise=exercise_locked(exercise_id),
        new_status=ExerciseStatus.ARCHIVED,
        action="archive",
        user=user,
        now=now,
    )


def review_disabled_reason() -> str | None:
    """Why the review processor cannot review now (no LLM, no model, budget), or None."""
    return llm_budget.disabled_reason(LLMPurpose.ASSESSMENT)


def exercise_staff_send_to_review(
    *, exercise_id: int, user: AbstractBaseUser, now: datetime
) -> ExerciseReview:
    """Back to `pending_review`: the review processor runs the LLM review on it again.

    Refused (code `llm_disabled`) while the review processor cannot call the LLM: the exercise
    would only wait in `pending_review` without anyone reviewing it.
    """
    reason = review_disabled_reason()
    if reason is not None:
        raise ValidationError(
            _("The LLM review cannot run: %(reason)s. Nothing was changed.") % {"reason": reason},
            code="llm_disabled",
        )
    with transaction.atomic():
        return _decide(
            exercise=exercise_locked(exercise_id),
            new_status=ExerciseStatus.PENDING_REVIEW,
            action="send_to_review",
            user=user,
            now=now,
        )


@transaction.atomic
def exercise_staff_admin_review(
    *, exercise_id: int, user: AbstractBaseUser, now: datetime
) -> ExerciseReview:
    return _decide(
        exercise=exercise_locked(exercise_id),
        new_status=ExerciseStatus.PENDING_ADMIN_REVIEW,
        action="admin_review",
        user=user,
        now=now,
    )


@transaction.atomic
def exercise_staff_regenerate_audio(
    *, exercise_id: int, user: AbstractBaseUser, now: datetime
) -> ExerciseReview:
    """A story to `audio_generation_error`: the refill job's repair voices it and publishes it.

    The current audio stays until the repair replaces it.
    """
    exercise = exercise_locked(exercise_id)
    if exercise.exercise_type != ExerciseType.STORY_COMPREHENSION:
        raise ValidationError(_("Only stories have audio."), code="not_a_story")
    return _decide(
        exercise=exercise,
        new_status=ExerciseStatus.AUDIO_GENERATION_ERROR,
        action="regenerate_audio",
        user=user,
        now=now,
    )


#: The review note of each decision ("... by <moderator>" is added).
STAFF_NOTES = {
    "publish": "published",
    "archive": "archived",
    "send_to_review": "sent to the LLM review",
    "admin_review": "marked for admin review",
    "regenerate_audio": "audio regeneration requested",
}


@dataclass(frozen=True)
class StaffAction:
    """A status decision of the admin: its label, its service and where it applies."""

    name: str
    label: str | _StrPromise
    service: Callable[..., ExerciseReview]
    new_status: str
    stories_only: bool = False
    disabled_reason: Callable[[], str | None] | None = None

    def skip_reason(self, *, status: str, exercise_type: str) -> str | None:
        """Why the decision does not apply to an exercise (None when it does)."""
        if self.stories_only and exercise_type != ExerciseType.STORY_COMPREHENSION:
            return _("not a story")
        if status == self.new_status:
            return _("already %(status)s") % {"status": ExerciseStatus(status).label.lower()}
        return None

    def unavailable_reason(self) -> str | None:
        """Why the decision cannot be taken now on any exercise (None when it can)."""
        return self.disabled_reason() if self.disabled_reason is not None else None


#: The status decisions of the admin, by action name (bulk actions and the page's buttons).
STAFF_ACTIONS: dict[str, StaffAction] = {
    action.name: action
    for action in (
        StaffAction(
            "publish", gettext_lazy("Publish"), exercise_staff_publish, ExerciseStatus.PUBLISHED
        ),
        StaffAction(
            "archive", gettext_lazy("Archive"), exercise_staff_archive, ExerciseStatus.ARCHIVED
        ),
        StaffAction(
            "send_to_review",
            gettext_lazy("Re-run the LLM review"),
            exercise_staff_send_to_review,
            ExerciseStatus.PENDING_REVIEW,
            disabled_reason=review_disabled_reason,
        ),
        StaffAction(
            "admin_review",
            gettext_lazy("Mark for admin review"),
            exercise_staff_admin_review,
            ExerciseStatus.PENDING_ADMIN_REVIEW,
        ),
        StaffAction(
            "regenerate_audio",
            gettext_lazy("Regenerate the story audio"),
            exercise_staff_regenerate_audio,
            ExerciseStatus.AUDIO_GENERATION_ERROR,
            stories_only=True,
        ),
    )
}
