"""Learners on the admin index: answers, correct answers and active learners per day.

Registered from the app's `ready()`; `duoniche/dashboard.py` assembles the page."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from django.db.models import Count, Q
from django.db.models.functions import TruncDate

from duoniche import svg
from duoniche.dashboard import (
    DAYS,
    Dashboard,
    Number,
    cached,
    changelist,
    day_label,
    day_start,
    on_day,
)
from learning.models import ExerciseAttempt


@dataclass(frozen=True)
class ActivityDay:
    day: date
    answered: int = 0
    correct: int = 0
    active_users: int = 0

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.answered if self.answered else None


def attempts_per_day(*, days: Sequence[date]) -> list[ActivityDay]:
    """Attempts (answered exercises), correct ones and distinct learners per day.

    Grouped by (day, learner) in the database and summed here: a hash aggregate, where a
    `COUNT(DISTINCT user_id)` per day would sort every attempt of the window. The rows returned
    are the daily active learners summed over the window.
    """
    rows = (
        ExerciseAttempt.objects.filter(created_at__gte=day_start(days[0]))
        .annotate(day=TruncDate("created_at"))
        .values_list("day", "user_id")
        .annotate(n=Count("id"), correct=Count("id", filter=Q(is_correct=True)))
        .order_by()
    )
    totals: dict[date, list[int]] = defaultdict(lambda: [0, 0, 0])
    for day, _user, n, correct in rows:
        total = totals[day]
        total[0] += n
        total[1] += correct
        total[2] += 1
    return [ActivityDay(day, *totals[day]) if day in totals else ActivityDay(day) for day in days]


def dashboard_activity(board: Dashboard) -> None:
    days = board.days
    series = cached(board, f"activity:{days[0]}:{days[-1]}", lambda: attempts_per_day(days=days))
    model = "learning_exerciseattempt"
    labels = [day_label(day.day) for day in series]
    hrefs = [changelist(model, **on_day("created_at", day.day)) for day in series]
    today = series[-1]
    window = on_day("created_at", board.days[0], DAYS)
    answered = sum(day.answered for day in series)
    correct = sum(day.correct for day in series)
    board.today.append(Number(today.answered, hrefs[-1], label="answered today"))
    board.today.append(Number(today.active_users, hrefs[-1], label="active learners today"))
    board.activity = {
        "answered": Number(answered, changelist(model, **window), label="answered"),
        "correct": Number(
            correct, changelist(model, **window, is_correct__exact=1), label="correct"
        ),
        "accuracy": f"{100 * correct / answered:.0f}%" if answered else "–",
        "chart": svg.bar_chart(
            [
                svg.Bar(label, day.answered, f"{day.day}: {day.answered} answered", href)
                for label, day, href in zip(labels, series, hrefs, strict=True)
            ],
            label=f"Exercises answered per day, last {DAYS} days",
        ),
        "accuracy_chart": svg.line_chart(
            labels,
            [
                svg.Series(
                    "accuracy %",
                    [
                        None if day.accuracy is None else round(100 * day.accuracy, 1)
                        for day in series
                    ],
                    [
                        changelist(model, **on_day("created_at", day.day), is_correct__exact=1)
                        for day in series
                    ],
                )
            ],
            label="Share of correct answers per day (%)",
            top=100,
        ),
        "learners_chart": svg.bar_chart(
            [
                svg.Bar(label, day.active_users, f"{day.day}: {day.active_users} learners", href)
                for label, day, href in zip(labels, series, hrefs, strict=True)
            ],
            label="Learners who answered, per day",
            color=svg.PALETTE[4],
        ),
    }
