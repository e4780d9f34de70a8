"""A moderator's answers and verdicts: accepting another answer, fixing or deleting a verdict.

Each change is recorded in the exercise's review history with the moderator's name; the reference
answer (the exercise's correct answer) stays correct and cannot be deleted here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from exercises.answers import AnswerNotInOptions, AnswerShapeError, canonical_answer
from exercises.models import Exercise, ExerciseAnswer
from exercises.moderation import answer_object, exercise_locked, staff_name, staff_record
from exercises.verdicts import verdict_accepted_create, verdict_judgement_set, verdicts_delete


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
    exercise = exercise_locked(exercise_id)
    submitted = answer_object(exercise.exercise_type, answer)
    try:
        matched = canonical_answer(
            exercise_type=exercise.exercise_type,
            exercise_language=exercise.exercise_language,
            data=exercise.data,
            submitted=submitted,
        )
    except (AnswerNotInOptions, AnswerShapeError) as exc:
        raise ValidationError(
            _("%(answer)r is not made of this exercise's options.") % {"answer": answer},
            code="not_in_options",
        ) from exc
    if exercise.verdicts.filter(answer_key=matched.key, is_correct=True).exists():
        raise ValidationError(
            _("%(answer)r is already accepted.") % {"answer": matched.text}, code="already_correct"
        )
    verdict = verdict_accepted_create(
        exercise=exercise, answer=matched, created_by=staff_name(user), now=now
    )
    staff_record(
        exercise_id=exercise.pk,
        new_status=exercise.status,
        action="accept_answer",
        user=user,
        now=now,
        note=f"accepted {matched.text!r}",
        analysis={"answer": matched.answer, "verdict_id": verdict.pk},
    )
    return verdict


def verdict_staff_edit_check(*, verdict: ExerciseAnswer, is_correct: bool) -> None:
    """Whether a verdict may take this judgement; no write. Raises `ValidationError`."""
    if verdict.is_reference and not is_correct:
        raise ValidationError(
            _("The reference answer is the exercise's correct answer; edit the exercise instead."),
            code="reference",
        )


@transaction.atomic
def verdict_staff_edit(
    *, verdict_id: int, is_correct: bool, feedback: str, user: AbstractBaseUser, now: datetime
) -> ExerciseAnswer:
    """Change a verdict's judgement or feedback (cleaned to the Telegram-HTML subset).

    `created_by` is kept and `updated_at` stamped; the reference answer stays correct.
    """
    verdict = ExerciseAnswer.objects.select_for_update().get(pk=verdict_id)
    verdict_staff_edit_check(verdict=verdict, is_correct=is_correct)
    previous = {"is_correct": verdict.is_correct, "feedback": verdict.feedback}
    verdict_judgement_set(verdict=verdict, is_correct=is_correct, feedback=feedback)
    _record_verdict(verdict=verdict, action="verdict_edit", user=user, now=now, previous=previous)
    return verdict


@transaction.atomic
def verdict_staff_delete(*, verdict_id: int, user: AbstractBaseUser, now: datetime) -> None:
    """Delete a stored verdict (attempts keep their copies); never the reference answer."""
    verdict = ExerciseAnswer.objects.select_for_update().filter(pk=verdict_id).first()
    if verdict is None:
        return
    if verdict.is_reference:
        raise ValidationError(_("The reference answer cannot be deleted."), code="reference")
    previous = {
        "is_correct": verdict.is_correct,
        "feedback": verdict.feedback,
        "created_by": verdict.created_by,
    }
    verdicts_delete([verdict.pk])
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
    staff_record(
        exercise_id=verdict.exercise_id,
        new_status=status,
        action=action,
        user=user,
        now=now,
        note=f"verdict {verdict.answer_text!r} ({verdict.feedback_language or 'any'}) {words}",
        analysis={"answer": verdict.answer_text, "previous": previous},
    )
