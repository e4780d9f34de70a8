"""Notifications on the admin index: what was sent, failed or skipped per day.

Registered from the app's `ready()`; `duoniche/dashboard.py` assembles the page."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from django.db.models import Count
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
from duoniche.enums import NotificationStatus
from notifications.models import NotificationLog


@dataclass(frozen=True)
class NotificationDay:
    day: date
    by_status: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.by_status.values())


def notifications_per_day(*, days: Sequence[date]) -> list[NotificationDay]:
    """Notifications decided per day, by status (`enqueued` = handed to the Notifier to send)."""
    rows = (
        NotificationLog.objects.filter(created_at__gte=day_start(days[0]))
        .annotate(day=TruncDate("created_at"))
        .values_list("day", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    found: dict[date, dict[str, int]] = defaultdict(dict)
    for day, status, n in rows:
        found[day][status] = n
    return [NotificationDay(day, dict(found.get(day, {}))) for day in days]


def dashboard_notifications(board: Dashboard) -> None:
    days = board.days
    series = cached(
        board, f"notifications:{days[0]}:{days[-1]}", lambda: notifications_per_day(days=days)
    )
    model = "notifications_notificationlog"
    statuses = [
        NotificationStatus.ENQUEUED,
        NotificationStatus.FAILED,
        NotificationStatus.SKIPPED,
        NotificationStatus.PENDING,
    ]
    colors = (svg.PALETTE[2], svg.PALETTE[3], "#999999", svg.PALETTE[1])
    window = on_day("created_at", board.days[0], DAYS)
    today = series[-1]
    failed_today = today.by_status.get(NotificationStatus.FAILED, 0)
    board.today.append(
        Number(
            failed_today,
            changelist(
                model,
                status__exact=NotificationStatus.FAILED.value,
                **on_day("created_at", board.days[-1]),
            ),
            label="notifications failed today",
            alert=failed_today > 0,
        )
    )
    board.notifications = {
        "totals": [
            Number(
                sum(day.by_status.get(status, 0) for day in series),
                changelist(model, status__exact=status.value, **window),
                label="sent (enqueued)" if status == NotificationStatus.ENQUEUED else status.value,
                alert=status == NotificationStatus.FAILED,
            )
            for status in statuses
        ],
        "chart": svg.stacked_bar_chart(
            [day_label(day.day) for day in series],
            [
                svg.Series(
                    status.value,
                    [day.by_status.get(status, 0) for day in series],
                    [
                        changelist(
                            model, status__exact=status.value, **on_day("created_at", day.day)
                        )
                        for day in series
                    ],
                )
                for status in statuses
            ],
            label=f"Notifications per day by status, last {DAYS} days",
            colors=colors,
        ),
        "legend": svg.legend(["sent (enqueued)", "failed", "skipped", "pending"], colors),
    }
