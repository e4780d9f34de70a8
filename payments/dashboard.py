"""Stars revenue on the admin index: payments and refunds per day.

Registered from the app's `ready()`; `duoniche/dashboard.py` assembles the page."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from django.db.models import Count, Q, Sum
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
from duoniche.enums import PaymentStatus
from payments.models import Payment


@dataclass(frozen=True)
class RevenueDay:
    day: date
    payments: int = 0
    stars: int = 0
    refunds: int = 0
    refunded_stars: int = 0


def payments_per_day(*, days: Sequence[date]) -> list[RevenueDay]:
    """Stars kept (payments still `paid`) and refunded, by the day the payment was processed."""
    paid = Q(status=PaymentStatus.PAID)
    refunded = Q(status=PaymentStatus.REFUNDED)
    rows = (
        Payment.objects.filter(processed_at__gte=day_start(days[0]))
        .annotate(day=TruncDate("processed_at"))
        .values_list("day")
        .annotate(
            payments=Count("id", filter=paid),
            stars=Sum("amount", filter=paid, default=0),
            refunds=Count("id", filter=refunded),
            refunded_stars=Sum("amount", filter=refunded, default=0),
        )
        .order_by()
    )
    found = {row[0]: RevenueDay(*row) for row in rows}
    return [found.get(day, RevenueDay(day)) for day in days]


def dashboard_revenue(board: Dashboard) -> None:
    days = board.days
    series = cached(board, f"revenue:{days[0]}:{days[-1]}", lambda: payments_per_day(days=days))
    model = "payments_payment"
    paid = {"status__exact": PaymentStatus.PAID.value}
    hrefs = [changelist(model, **paid, **on_day("processed_at", day.day)) for day in series]
    window = on_day("processed_at", board.days[0], DAYS)
    today = series[-1]
    board.today.append(Number(today.stars, hrefs[-1], label=f"Stars today ({today.payments})"))
    board.revenue = {
        "stars": Number(
            sum(day.stars for day in series), changelist(model, **paid, **window), "Stars kept"
        ),
        "payments": sum(day.payments for day in series),
        "refunded_stars": Number(
            sum(day.refunded_stars for day in series),
            changelist(model, status__exact=PaymentStatus.REFUNDED.value, **window),
            "Stars refunded",
        ),
        "refunds": sum(day.refunds for day in series),
        "chart": svg.bar_chart(
            [
                svg.Bar(
                    day_label(day.day),
                    day.stars,
                    f"{day.day}: {day.stars} Stars from {day.payments} payments"
                    + (f", {day.refunded_stars} refunded" if day.refunds else ""),
                    href,
                )
                for day, href in zip(series, hrefs, strict=True)
            ],
            label=f"Telegram Stars kept per day (refunds excluded), last {DAYS} days",
            color=svg.PALETTE[1],
        ),
    }
