"""Reads of the exercise bank."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Prefetch

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


@dataclass(frozen=True)
class SqlCondition:
    """A parameterised SQL condition on the exercise row, which the query aliases `e`.

    It is how `learning` hands in "the learner has already seen it" without this app importing
    `learning`.
    """

    sql: str
    params: tuple[Any, ...] = ()


_PICK_COLUMNS = ("id", "exercise_type", "exercise_language", "language_level", "topic", "data")


def exercise_pick_random(
    *,
    bot_id: str,
    exercise_type: str | None = None,
    level: str | None = None,
    topic: str | None = None,
    exclude_topics: frozenset[str] = frozenset(),
    exclude: SqlCondition | None = None,
) -> Exercise | None:
    """A uniformly random published exercise matching the filters, without a table scan.

    Draw r in [0, 1) and walk the `exercise_pick_*_idx` index from r, wrapping to the start:
    one round trip whose cost is bounded by the rows `exclude` skips, not by the bank (Fix 9).
    The statement is written out (parameterised) because this is the hottest query of the
    service and the ORM's compilation of a two-branch UNION cost more than its execution.
    """
    conditions = ["e.exercise_language = %s", "e.status = %s"]
    params: list[Any] = [bot_id, ExerciseStatus.PUBLISHED.value]
    for column, value in (
        ("exercise_type", exercise_type),
        ("language_level", level),
        ("topic", topic),
    ):
        if value is not None:
            conditions.append(f"e.{column} = %s")
            params.append(value)
    if exclude_topics:
        conditions.append("NOT (e.topic = ANY(%s))")
        params.append(sorted(exclude_topics))
    if exclude is not None:
        conditions.append(f"NOT ({exclude.sql})")
        params.extend(exclude.params)
    where = " AND ".join(conditions)
    columns = ", ".join(f"e.{column}" for column in _PICK_COLUMNS)
    table = Exercise._meta.db_table
    # Only identifiers of ours and fixed fragments are formatted in; every value is a parameter.
    branch = f"SELECT {columns} FROM {table} e WHERE {where} AND e.random_key {{}} %s " + (  # noqa: S608
        "ORDER BY e.random_key LIMIT 1"
    )
    sql = f"({branch.format('>=')}) UNION ALL ({branch.format('<')}) LIMIT 1"
    r = random.random()
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, r, *params, r])
        row = cursor.fetchone()
    if row is None:
        return None
    values = list(row)
    if isinstance(values[-1], str):
        values[-1] = json.loads(values[-1])
    return Exercise.from_db(connection.alias, list(_PICK_COLUMNS), values)
