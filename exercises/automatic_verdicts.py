"""Verdicts no model writes: the automatic verdict of a wrong accent or story answer (stored, in
the reader's language, listing the correct answers), and the deterministic verdict used when the
LLM is off or failed (correct iff it is the reference answer; never stored, so a later call with a
model can still write real feedback).
"""

from __future__ import annotations

from typing import Any

from duoniche.enums import ExerciseType
from exercises.answers import CanonicalAnswer, automatic_feedback, deterministic_feedback
from exercises.content import BLANK
from exercises.models import Exercise, ExerciseAnswer
from exercises.tags import ACCENT_TAG, LISTENING_TAG
from exercises.verdicts import AUTOMATIC_PREFIX, Verdict, verdict_insert

#: Types whose wrong answers get an automatic verdict and are never sent to a model.
AUTOMATIC_TAGS: dict[str, str] = {
    ExerciseType.CHOOSE_ACCENT: ACCENT_TAG,
    ExerciseType.STORY_COMPREHENSION: LISTENING_TAG,
}


def _vocabulary(exercise: Exercise) -> list[str]:
    tags = exercise.grammar_tags if isinstance(exercise.grammar_tags, dict) else {}
    vocabulary = tags.get("vocabulary") or []
    return [str(tag) for tag in vocabulary] if isinstance(vocabulary, list) else []


def _correct_texts(exercise: Exercise) -> list[str]:
    texts = ExerciseAnswer.objects.filter(exercise=exercise, is_correct=True).order_by(
        "-is_reference", "created_at", "pk"
    )
    return list(dict.fromkeys(texts.values_list("answer_text", flat=True)))


def verdict_insert_automatic(
    *, exercise: Exercise, answer: CanonicalAnswer, user_id: int, feedback_language: str
) -> ExerciseAnswer:
    """The automatic verdict of a wrong accent or story answer."""
    return verdict_insert(
        exercise=exercise,
        answer=answer,
        is_correct=False,
        feedback=automatic_feedback(
            exercise_type=exercise.exercise_type,
            data=exercise.data,
            correct_texts=_correct_texts(exercise),
        ),
        feedback_language=feedback_language,
        error_tags={
            "grammar": [AUTOMATIC_TAGS[exercise.exercise_type]],
            "vocabulary": _vocabulary(exercise),
        },
        created_by=f"{AUTOMATIC_PREFIX}{user_id}",
    )


def _reference_answer(exercise: Exercise) -> dict[str, Any]:
    reference = (
        ExerciseAnswer.objects.filter(exercise=exercise, is_correct=True)
        .order_by("-is_reference", "created_at", "pk")
        .values_list("answer", flat=True)
        .first()
    )
    if isinstance(reference, dict):
        return reference
    data = exercise.data  # no correct verdict at all: the stored order puts the correct first
    if exercise.exercise_type == ExerciseType.FILL_IN_THE_BLANK:
        blanks = str(data.get("text_with_blanks") or "").count(BLANK) or 1
        return {"words": list(data.get("words") or [])[:blanks]}
    return {"answer": (data.get("options") or [""])[0]}


def deterministic_verdict(*, exercise: Exercise, answer: CanonicalAnswer) -> Verdict:
    """The no-LLM verdict: correct iff it is the reference answer; not stored."""
    reference = _reference_answer(exercise)
    is_correct = answer.answer == reference
    return Verdict(
        is_correct=is_correct,
        feedback=""
        if is_correct
        else deterministic_feedback(
            exercise_type=exercise.exercise_type, data=exercise.data, reference=reference
        ),
        error_tags={"grammar": [], "vocabulary": _vocabulary(exercise)},
        verdict_id=None,
    )
