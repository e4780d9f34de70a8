"""Reads of the exercise bank."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from django.db.models import Prefetch

from exercises.bank import bank_item_from_exercise
from exercises.models import Exercise, ExerciseAnswer


def exercises_for_export(
    *,
    languages: Sequence[str] = (),
    types: Sequence[str] = (),
    statuses: Sequence[str] = (),
    levels: Sequence[str] = (),
) -> Iterator[tuple[Exercise, dict[str, Any] | None]]:
    """Exercises matching the filters (OR within one, AND across), by id, as bank items.

    The item is None for an exercise that has no reference verdict (it cannot be exported).
    """
    queryset = Exercise.objects.order_by("id").prefetch_related(
        Prefetch(
            "verdicts",
            queryset=ExerciseAnswer.objects.filter(is_reference=True),
            to_attr="reference_verdicts",
        )
    )
    for field, values in (
        ("exercise_language", languages),
        ("exercise_type", types),
        ("status", statuses),
        ("language_level", levels),
    ):
        if values:
            queryset = queryset.filter(**{f"{field}__in": list(values)})
    for exercise in queryset.iterator(chunk_size=500):
        references: list[ExerciseAnswer] = exercise.reference_verdicts  # type: ignore[attr-defined]
        if not references:
            yield exercise, None
            continue
        yield (
            exercise,
            bank_item_from_exercise(
                exercise_type=exercise.exercise_type,
                exercise_language=exercise.exercise_language,
                language_level=exercise.language_level,
                topic=exercise.topic,
                data=exercise.data,
                correct_answer=references[0].answer,
                grammar_tags=exercise.grammar_tags,
                status=exercise.status,
                persona=exercise.persona,
            ),
        )
