"""Reads of the exercise bank."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import Any

from django.db.models import Exists, Prefetch

from duoniche.enums import ExerciseStatus
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


def exercise_pick_random(
    *,
    bot_id: str,
    exercise_type: str | None = None,
    level: str | None = None,
    topic: str | None = None,
    exclude_topics: frozenset[str] = frozenset(),
    seen: Exists | None = None,
) -> Exercise | None:
    """A uniformly random published exercise matching the filters, without a table scan.

    Draw r in [0, 1) and walk the `exercise_pick_*_idx` index from r (wrapping to the start):
    one round trip, cost bounded by the rows the caller's `seen` filter skips (Fix 9). `seen` is
    an `Exists` over the learner's attempts that `learning` passes in.
    """
    queryset = Exercise.objects.filter(exercise_language=bot_id, status=ExerciseStatus.PUBLISHED)
    if exercise_type is not None:
        queryset = queryset.filter(exercise_type=exercise_type)
    if level is not None:
        queryset = queryset.filter(language_level=level)
    if topic is not None:
        queryset = queryset.filter(topic=topic)
    if exclude_topics:
        queryset = queryset.exclude(topic__in=exclude_topics)
    if seen is not None:
        queryset = queryset.filter(~seen)
    r = random.random()
    after = queryset.filter(random_key__gte=r).order_by("random_key")[:1]
    before = queryset.filter(random_key__lt=r).order_by("random_key")[:1]
    return next(iter(after.union(before, all=True)[:1]), None)
