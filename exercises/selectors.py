"""Reads of the exercise bank."""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import (
    Count,
    DateTimeField,
    Expression,
    FloatField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce

from duoniche.enums import ExerciseStatus
from exercises.bank import bank_item_from_exercise
from exercises.models import Exercise, ExerciseAnswer, ExerciseReview


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
            # By id: the first reference verdict is exported, the same one every time.
            queryset=ExerciseAnswer.objects.filter(is_reference=True).order_by("id"),
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
    one round trip whose cost is bounded by the rows `exclude` skips, not by the bank.
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


# --- Moderation (the admin's exercise page and queue) -------------------------------------------


@dataclass(frozen=True)
class WeightedErrorRate:
    """Rating-weighted attempts since the last review (docs/jobs.md)."""

    attempts: int
    weighted_total: float
    weighted_incorrect: float

    @property
    def rate(self) -> float | None:
        return self.weighted_incorrect / self.weighted_total if self.weighted_total else None


#: Builds an attempt's weight from the language it was made in (a value or an `OuterRef`): the
#: learner's rating there. Ratings belong to `learning`, which registers the builder from its
#: `ready()` (`attempt_weight_register`); this app never imports it.
AttemptWeight = Callable[[Any], Expression]
_attempt_weight: list[AttemptWeight] = []


def attempt_weight_register(builder: AttemptWeight) -> None:
    """Set how attempts are weighed (one builder per process; the last one wins)."""
    _attempt_weight[:] = [builder]


def attempt_weight(*, bot_id: Any) -> Expression:
    """An attempt's weight: the registered builder's, or the default rating for every attempt."""
    if _attempt_weight:
        return _attempt_weight[0](bot_id)
    return Value(float(settings.QUALITY_DEFAULT_RATING), output_field=FloatField())


def attempts_weighted_error_rate(
    *, attempts: QuerySet[Any], exercise_language: str, since: datetime | None
) -> WeightedErrorRate:
    """The weighted error rate of `attempts` (an exercise's `attempts` reverse relation).

    Only attempts after `since` (the exercise's `last_reviewed_at`) count, as in the quality
    monitor. One aggregate query.
    """
    if since is not None:
        attempts = attempts.filter(created_at__gt=since)
    weight = attempt_weight(bot_id=exercise_language)
    totals = attempts.aggregate(
        count=Count("pk"),
        total=Sum(weight),
        incorrect=Sum(weight, filter=Q(is_correct=False)),
    )
    return WeightedErrorRate(
        attempts=totals["count"],
        weighted_total=float(totals["total"] or 0.0),
        weighted_incorrect=float(totals["incorrect"] or 0.0),
    )


def exercises_with_moderation_columns(queryset: QuerySet[Exercise]) -> QuerySet[Exercise]:
    """`queryset` annotated for the moderation queue, still one query per page.

    `error_rate`: the weighted error rate of the attempts since `last_reviewed_at` (None without
    any); `assessor_action` / `assessor_revision`: `suggested_action` and `suggested_revision` of
    the latest review that carries an assessor suggestion.
    """
    attempt_model = Exercise._meta.get_field("attempts").related_model
    weight = attempt_weight(bot_id=OuterRef(OuterRef("exercise_language")))
    since = Coalesce(
        OuterRef("last_reviewed_at"),
        Value(datetime.min.replace(tzinfo=UTC)),
        output_field=DateTimeField(),
    )
    attempts = (
        attempt_model.objects.filter(exercise=OuterRef("pk"), created_at__gt=since)  # type: ignore[union-attr]
        .order_by()
        .values("exercise")
    )
    rate = attempts.annotate(
        rate=Sum(weight, filter=Q(is_correct=False), default=0.0) / Sum(weight)
    ).values("rate")
    suggestions = ExerciseReview.objects.filter(
        exercise=OuterRef("pk"), analysis__has_key="suggested_action"
    ).order_by("-created_at", "-pk")
    return queryset.annotate(
        error_rate=Subquery(rate, output_field=FloatField()),
        assessor_action=Subquery(
            suggestions.annotate(value=KT("analysis__suggested_action")).values("value")[:1]
        ),
        assessor_revision=Subquery(
            suggestions.annotate(value=KT("analysis__suggested_revision")).values("value")[:1]
        ),
    )


@dataclass
class AnswerRow:
    """One distinct answer on the exercise page: who gave it and how it is judged."""

    answer_text: str
    answer: dict[str, Any] | None = None
    learners: int = 0
    attempts: int = 0
    correct_attempts: int = 0
    verdicts: list[ExerciseAnswer] = dataclasses.field(default_factory=list)

    @property
    def is_correct(self) -> bool | None:
        """The stored judgement (a correct verdict wins, as in reuse), else the attempts'."""
        if self.verdicts:
            return any(verdict.is_correct for verdict in self.verdicts)
        if self.attempts:
            return self.correct_attempts == self.attempts
        return None

    @property
    def is_reference(self) -> bool:
        return any(verdict.is_reference for verdict in self.verdicts)

    @property
    def is_accepted(self) -> bool:
        """Whether a stored correct verdict makes it correct for everyone.

        Not the same as `is_correct`: an answer the validator judged correct against the
        reference was correct for its learners only, and waits for a moderator to accept it.
        """
        return any(verdict.is_correct for verdict in self.verdicts)


def exercise_answer_rows(*, exercise: Exercise) -> list[AnswerRow]:
    """Every distinct answer given or judged, most learners first: two queries.

    Attempts are counted through the `attempts` reverse relation (all time); each row carries
    the stored verdicts of that answer, one per feedback language.
    """
    rows: dict[str, AnswerRow] = {}
    given = (
        exercise.attempts.order_by()
        .values("answer_key", "answer_text")
        .annotate(
            learners=Count("user", distinct=True),
            count=Count("pk"),
            correct=Count("pk", filter=Q(is_correct=True)),
        )
    )
    for item in given:
        row = rows.setdefault(item["answer_key"], AnswerRow(answer_text=item["answer_text"]))
        row.learners += item["learners"]
        row.attempts += item["count"]
        row.correct_attempts += item["correct"]
    for verdict in exercise.verdicts.order_by("feedback_language", "pk"):
        row = rows.setdefault(verdict.answer_key, AnswerRow(answer_text=verdict.answer_text))
        row.answer = verdict.answer
        row.verdicts.append(verdict)
    return sorted(
        rows.values(),
        key=lambda row: (not row.is_reference, -row.learners, -row.attempts, row.answer_text),
    )
