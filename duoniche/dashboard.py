"""The operations dashboard on the admin index: selectors and their presentation.

Selectors (`exercise_counts`, `attempts_per_day`, …) are one aggregate query each and return plain
data. `dashboard_build` runs those the staff member may see (one view permission per section) and
shapes them for `templates/admin/index.html`: every number carries the link to the filtered
changelist behind it, and the series come with server-side SVG charts (`duoniche/svg.py`).

Each section's figures are reused from the cache for up to `CACHE_SECONDS` (a minute): the bank
and the attempts are large tables, and a dashboard needs no fresher numbers; the page says when
they were computed.

Like `duoniche/urls.py`, this module sits at the project level and reads every app's models.
Days are calendar days in the current time zone (UTC), matching `TruncDate`.

History that is not stored is not invented: exercises *served* per day are not kept
(`BotProfile.exercises_get_in_session` is a running counter), so "answered" counts recorded
attempts per day.
"""

from __future__ import annotations

import functools
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Max, Q, Sum
from django.db.models.functions import TruncDate
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils import timezone
from django.utils.http import urlencode

from duoniche import svg
from duoniche.enums import (
    ExerciseStatus,
    JobRunStatus,
    LanguageLevel,
    LLMPurpose,
    NotificationStatus,
    PaymentStatus,
)
from duoniche.jobs import JOBS
from duoniche.languages import languages
from duoniche.models import JobLock, JobRun, LLMCall
from exercises.models import Exercise
from learning.models import ExerciseAttempt
from notifications.models import NotificationLog
from payments.models import Payment

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

DAYS = 30
#: How long a section's figures are reused (the page shows their age).
CACHE_SECONDS = 60
#: The quality funnel, in the order a moderator reads it; other statuses follow.
FUNNEL = (
    ExerciseStatus.PUBLISHED,
    ExerciseStatus.PENDING_REVIEW,
    ExerciseStatus.PENDING_ADMIN_REVIEW,
    ExerciseStatus.ARCHIVED,
    ExerciseStatus.REJECTED_BY_ASSESSOR,
)
#: The view permission each section needs (what its numbers link to).
SECTION_PERMISSIONS = {
    "exercises": "exercises.view_exercise",
    "activity": "learning.view_exerciseattempt",
    "revenue": "payments.view_payment",
    "llm": "duoniche.view_llmcall",
    "notifications": "notifications.view_notificationlog",
    "jobs": "duoniche.view_jobrun",
}


# --- selectors: one aggregate query each -------------------------------------------------------


@dataclass(frozen=True)
class StockCell:
    published: int = 0
    untouched: int = 0


@dataclass
class StockRow:
    """Published exercises of one (language, type): untouched ones are what the refill counts."""

    language: str
    exercise_type: str
    target: int
    levels: dict[str, StockCell] = field(default_factory=dict)

    @property
    def published(self) -> int:
        return sum(cell.published for cell in self.levels.values())

    @property
    def untouched(self) -> int:
        return sum(cell.untouched for cell in self.levels.values())

    @property
    def deficit(self) -> int:
        return max(0, self.target - self.untouched)


@dataclass(frozen=True)
class ExerciseCounts:
    by_status: dict[str, int]
    stock: list[StockRow]


def exercise_counts(*, target: int) -> ExerciseCounts:
    """Exercises per status (the funnel) and published stock per (language, type, level).

    One grouped pass over the bank. The stock lists every configured (language, type) even when
    empty, then any other pair found in the bank (an unconfigured language).
    """
    rows = (
        Exercise.objects.values_list(
            "status", "exercise_language", "exercise_type", "language_level"
        )
        .annotate(n=Count("id"), untouched=Count("id", filter=Q(attempts_count=0)))
        .order_by()
    )
    by_status: dict[str, int] = defaultdict(int)
    stock: dict[tuple[str, str], StockRow] = {}
    for language in languages().values():
        for exercise_type in language.generated_types:
            stock[(language.bot_id, exercise_type)] = StockRow(
                language.bot_id, exercise_type, target
            )
    found: list[tuple[str, str, str, int, int]] = []
    for status, language_id, exercise_type, level, n, untouched in rows:
        by_status[status] += n
        if status == ExerciseStatus.PUBLISHED:
            found.append((language_id, exercise_type, level, n, untouched))
    for language_id, exercise_type, level, n, untouched in sorted(found):
        row = stock.setdefault(
            (language_id, exercise_type), StockRow(language_id, exercise_type, target)
        )
        row.levels[level] = StockCell(published=n, untouched=untouched)
    return ExerciseCounts(by_status=dict(by_status), stock=list(stock.values()))


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
        ExerciseAttempt.objects.filter(created_at__gte=_start(days[0]))
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
        Payment.objects.filter(processed_at__gte=_start(days[0]))
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


@dataclass(frozen=True)
class LLMUsage:
    day: date
    purpose: str
    calls: int = 0
    failed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    #: Calls whose model has no price (`cost_usd` null): the cost is a lower bound when > 0.
    unpriced: int = 0


def llm_usage_per_day(*, days: Sequence[date]) -> list[LLMUsage]:
    """LLM calls, tokens and cost per (day, purpose) from the ledger; days without calls omitted."""
    rows = (
        LLMCall.objects.filter(created_at__gte=_start(days[0]))
        .annotate(day=TruncDate("created_at"))
        .values_list("day", "purpose")
        .annotate(
            calls=Count("id"),
            failed=Count("id", filter=Q(ok=False)),
            tokens_in=Sum("input_tokens", default=0),
            tokens_out=Sum("output_tokens", default=0),
            cost=Sum("cost_usd", default=Decimal(0)),
            unpriced=Count("id", filter=Q(cost_usd__isnull=True)),
        )
        .order_by("day", "purpose")
    )
    return [LLMUsage(*row) for row in rows]


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
        NotificationLog.objects.filter(created_at__gte=_start(days[0]))
        .annotate(day=TruncDate("created_at"))
        .values_list("day", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    found: dict[date, dict[str, int]] = defaultdict(dict)
    for day, status, n in rows:
        found[day][status] = n
    return [NotificationDay(day, dict(found.get(day, {}))) for day in days]


@dataclass(frozen=True)
class JobState:
    name: str
    registered: bool
    last: JobRun | None
    lock: JobLock | None


def job_states(*, registered: Iterable[str]) -> list[JobState]:
    """The latest run of every job (the newest row per job) and any lock held; two queries."""
    latest_ids = JobRun.objects.values("job").annotate(latest=Max("id")).values("latest")
    runs = {run.job: run for run in JobRun.objects.filter(pk__in=latest_ids).defer("stats")}
    locks = {lock.name: lock for lock in JobLock.objects.all()}
    names = list(registered)
    names += sorted((runs.keys() | locks.keys()) - set(names))
    known = set(JOBS)
    return [JobState(name, name in known, runs.get(name), locks.get(name)) for name in names]


# --- presentation: numbers with their links, and charts ---------------------------------------


@dataclass(frozen=True)
class Number:
    """A figure on the dashboard and the changelist behind it."""

    value: Any
    href: str
    label: str = ""
    alert: bool = False


@dataclass
class Dashboard:
    now: datetime
    days: list[date]
    sections: set[str]
    #: When the oldest cached figures shown were computed (None: everything is live).
    cached_at: datetime | None = None
    today: list[Number] = field(default_factory=list)
    stock: list[dict[str, Any]] = field(default_factory=list)
    levels: list[str] = field(default_factory=list)
    funnel: list[Number] = field(default_factory=list)
    other_statuses: list[Number] = field(default_factory=list)
    activity: dict[str, Any] = field(default_factory=dict)
    revenue: dict[str, Any] = field(default_factory=dict)
    llm: dict[str, Any] = field(default_factory=dict)
    notifications: dict[str, Any] = field(default_factory=dict)
    jobs: list[dict[str, Any]] = field(default_factory=list)


def _cached(board: Dashboard, key: str, compute: Callable[[], _T]) -> _T:
    """`compute()`, kept `CACHE_SECONDS` in the cache; a cache that is down only costs time.

    A grouped pass over the bank or the attempts costs ~100 ms at 200,000 rows, so the figures
    may be up to a minute old; the page says since when (`board.cached_at`, the oldest).
    """
    key = f"dashboard:{key}"
    try:
        hit = cache.get(key)
    except Exception:  # the cache is an optimisation: never fail the page on it
        logger.warning("dashboard cache unavailable", exc_info=True)
        hit = None
    if hit is None:
        hit = (compute(), timezone.now())
        try:
            cache.set(key, hit, CACHE_SECONDS)
        except Exception:
            logger.warning("dashboard cache unavailable", exc_info=True)
    value, computed_at = hit
    if board.cached_at is None or computed_at < board.cached_at:
        board.cached_at = computed_at
    return value


def _start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


def _changelist(model: str, **params: str | int) -> str:
    return _changelist_url(model, get_script_prefix(), get_urlconf(), tuple(params.items()))


@functools.lru_cache(maxsize=4096)
def _changelist_url(
    model: str, prefix: str, urlconf: Any, params: tuple[tuple[str, str | int], ...]
) -> str:
    """Cached: the dashboard links hundreds of (mostly repeated) changelist filters."""
    url = reverse(f"admin:{model}_changelist", urlconf=urlconf)
    return f"{url}?{urlencode(params)}" if params else url


def _on_day(field_name: str, day: date, days: int = 1) -> dict[str, str]:
    """Changelist parameters for `day` (or `days` days from it), as aware datetimes."""
    return {
        f"{field_name}__gte": _start(day).isoformat(),
        f"{field_name}__lt": _start(day + timedelta(days=days)).isoformat(),
    }


def _day_label(day: date) -> str:
    return day.strftime("%m-%d")


def dashboard_build(*, now: datetime, can_view: Callable[[str], bool]) -> Dashboard:
    """Everything the index shows to someone with these permissions (a section per permission)."""
    today = timezone.localdate(now)
    days = [today - timedelta(days=offset) for offset in range(DAYS - 1, -1, -1)]
    sections = {name for name, perm in SECTION_PERMISSIONS.items() if can_view(perm)}
    board = Dashboard(now=now, days=days, sections=sections)
    if "exercises" in sections:
        _exercises(board)
    if "activity" in sections:
        _activity(board)
    if "revenue" in sections:
        _revenue(board)
    if "llm" in sections:
        _llm(board)
    if "notifications" in sections:
        _notifications(board)
    if "jobs" in sections:
        _jobs(board)
    return board


def _exercises(board: Dashboard) -> None:
    target = settings.MIN_EXERCISE_COUNT_TO_GENERATE_NEW
    counts = _cached(board, f"exercises:{target}", lambda: exercise_counts(target=target))
    model = "exercises_exercise"
    published = {"status__exact": ExerciseStatus.PUBLISHED.value}
    board.levels = list(LanguageLevel.values)
    for row in counts.stock:
        pair = {
            **published,
            "exercise_language__exact": row.language,
            "exercise_type__exact": row.exercise_type,
        }
        cells = []
        for level in board.levels:
            cell = row.levels.get(level, StockCell())
            at_level = {**pair, "language_level__exact": level}
            cells.append(
                {
                    "published": Number(cell.published, _changelist(model, **at_level)),
                    "untouched": Number(
                        cell.untouched, _changelist(model, **at_level, attempts_count__exact=0)
                    ),
                }
            )
        board.stock.append(
            {
                "language": row.language,
                "exercise_type": row.exercise_type,
                "untouched": Number(
                    row.untouched,
                    _changelist(model, **pair, attempts_count__exact=0),
                    alert=row.deficit > 0,
                ),
                "target": row.target,
                "deficit": row.deficit,
                "published": Number(row.published, _changelist(model, **pair)),
                "levels": cells,
            }
        )
    for status in ExerciseStatus:
        number = Number(
            counts.by_status.get(status, 0),
            _changelist(model, status__exact=status.value),
            label=status.value,
            alert=status == ExerciseStatus.PENDING_ADMIN_REVIEW and status in counts.by_status,
        )
        (board.funnel if status in FUNNEL else board.other_statuses).append(number)
    board.funnel.sort(key=lambda number: FUNNEL.index(ExerciseStatus(number.label)))
    for status in (ExerciseStatus.PENDING_REVIEW, ExerciseStatus.PENDING_ADMIN_REVIEW):
        board.today.append(
            Number(
                counts.by_status.get(status, 0),
                _changelist(model, status__exact=status.value),
                label=f"{status.label.lower()} (queue)",
            )
        )


def _activity(board: Dashboard) -> None:
    days = board.days
    series = _cached(board, f"activity:{days[0]}:{days[-1]}", lambda: attempts_per_day(days=days))
    model = "learning_exerciseattempt"
    labels = [_day_label(day.day) for day in series]
    hrefs = [_changelist(model, **_on_day("created_at", day.day)) for day in series]
    today = series[-1]
    window = _on_day("created_at", board.days[0], DAYS)
    answered = sum(day.answered for day in series)
    correct = sum(day.correct for day in series)
    board.today.append(Number(today.answered, hrefs[-1], label="answered today"))
    board.today.append(Number(today.active_users, hrefs[-1], label="active learners today"))
    board.activity = {
        "answered": Number(answered, _changelist(model, **window), label="answered"),
        "correct": Number(
            correct, _changelist(model, **window, is_correct__exact=1), label="correct"
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
                        _changelist(model, **_on_day("created_at", day.day), is_correct__exact=1)
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


def _revenue(board: Dashboard) -> None:
    days = board.days
    series = _cached(board, f"revenue:{days[0]}:{days[-1]}", lambda: payments_per_day(days=days))
    model = "payments_payment"
    paid = {"status__exact": PaymentStatus.PAID.value}
    hrefs = [_changelist(model, **paid, **_on_day("processed_at", day.day)) for day in series]
    window = _on_day("processed_at", board.days[0], DAYS)
    today = series[-1]
    board.today.append(Number(today.stars, hrefs[-1], label=f"Stars today ({today.payments})"))
    board.revenue = {
        "stars": Number(
            sum(day.stars for day in series), _changelist(model, **paid, **window), "Stars kept"
        ),
        "payments": sum(day.payments for day in series),
        "refunded_stars": Number(
            sum(day.refunded_stars for day in series),
            _changelist(model, status__exact=PaymentStatus.REFUNDED.value, **window),
            "Stars refunded",
        ),
        "refunds": sum(day.refunds for day in series),
        "chart": svg.bar_chart(
            [
                svg.Bar(
                    _day_label(day.day),
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


def _llm(board: Dashboard) -> None:
    days = board.days
    usage = _cached(board, f"llm:{days[0]}:{days[-1]}", lambda: llm_usage_per_day(days=days))
    model = "duoniche_llmcall"
    purposes = list(LLMPurpose.values)
    by_day: dict[tuple[date, str], LLMUsage] = {(row.day, row.purpose): row for row in usage}
    labels = [_day_label(day) for day in board.days]
    window = _on_day("created_at", board.days[0], DAYS)

    hrefs = {
        purpose: [
            _changelist(model, purpose__exact=purpose, **_on_day("created_at", day))
            for day in board.days
        ]
        for purpose in purposes
    }

    def series(value: Callable[[LLMUsage], float]) -> list[svg.Series]:
        return [
            svg.Series(
                purpose,
                [
                    value(by_day[(day, purpose)]) if (day, purpose) in by_day else 0
                    for day in board.days
                ],
                hrefs[purpose],
            )
            for purpose in purposes
        ]

    totals = []
    for purpose in purposes:
        rows = [row for row in usage if row.purpose == purpose]
        totals.append(
            {
                "purpose": purpose,
                "calls": Number(
                    sum(row.calls for row in rows),
                    _changelist(model, purpose__exact=purpose, **window),
                ),
                "failed": Number(
                    sum(row.failed for row in rows),
                    _changelist(model, purpose__exact=purpose, ok__exact=0, **window),
                ),
                "input_tokens": sum(row.input_tokens for row in rows),
                "output_tokens": sum(row.output_tokens for row in rows),
                "cost_usd": sum((row.cost_usd for row in rows), Decimal(0)),
                "unpriced": sum(row.unpriced for row in rows),
            }
        )
    today_rows = [row for row in usage if row.day == board.days[-1]]
    cost_today = sum((row.cost_usd for row in today_rows), Decimal(0))
    budget = Decimal(str(settings.LLM_DAILY_BUDGET_USD))
    share = float(cost_today / budget) if budget > 0 else None
    today_href = _changelist(model, **_on_day("created_at", board.days[-1]))
    board.today.append(
        Number(
            f"${cost_today:.2f}" + (f" / ${budget:.2f}" if budget > 0 else ""),
            today_href,
            label="LLM cost today" + (" vs budget" if budget > 0 else " (no budget set)"),
            alert=share is not None and share >= 1,
        )
    )
    board.llm = {
        "totals": totals,
        "cost_today": cost_today,
        "budget": budget,
        "budget_share": share,
        "budget_percent": min(100, round(100 * share)) if share is not None else None,
        "calls_today": Number(sum(row.calls for row in today_rows), today_href),
        "unpriced_today": sum(row.unpriced for row in today_rows),
        "cost_chart": svg.stacked_bar_chart(
            labels,
            series(lambda row: float(row.cost_usd)),
            label=f"LLM cost (USD) per day and purpose, last {DAYS} days",
        ),
        "calls_chart": svg.stacked_bar_chart(
            labels,
            series(lambda row: row.calls),
            label=f"LLM calls per day and purpose, last {DAYS} days",
        ),
        "tokens_chart": svg.stacked_bar_chart(
            labels,
            series(lambda row: row.input_tokens + row.output_tokens),
            label=f"LLM tokens (input + output) per day and purpose, last {DAYS} days",
        ),
        "legend": svg.legend(purposes),
    }


def _notifications(board: Dashboard) -> None:
    days = board.days
    series = _cached(
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
    window = _on_day("created_at", board.days[0], DAYS)
    today = series[-1]
    failed_today = today.by_status.get(NotificationStatus.FAILED, 0)
    board.today.append(
        Number(
            failed_today,
            _changelist(
                model,
                status__exact=NotificationStatus.FAILED.value,
                **_on_day("created_at", board.days[-1]),
            ),
            label="notifications failed today",
            alert=failed_today > 0,
        )
    )
    board.notifications = {
        "totals": [
            Number(
                sum(day.by_status.get(status, 0) for day in series),
                _changelist(model, status__exact=status.value, **window),
                label="sent (enqueued)" if status == NotificationStatus.ENQUEUED else status.value,
                alert=status == NotificationStatus.FAILED,
            )
            for status in statuses
        ],
        "chart": svg.stacked_bar_chart(
            [_day_label(day.day) for day in series],
            [
                svg.Series(
                    status.value,
                    [day.by_status.get(status, 0) for day in series],
                    [
                        _changelist(
                            model, status__exact=status.value, **_on_day("created_at", day.day)
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


def _jobs(board: Dashboard) -> None:
    for state in _cached(board, "jobs", lambda: job_states(registered=JOBS)):
        run = state.last
        board.jobs.append(
            {
                "name": state.name,
                "registered": state.registered,
                "runs": _changelist("duoniche_jobrun", job__exact=state.name),
                "last": run,
                "last_href": reverse("admin:duoniche_jobrun_change", args=[run.pk]) if run else "",
                "failed": run is not None and run.status == JobRunStatus.FAILED,
                "error": (run.error[:200] if run is not None else ""),
                "lock": state.lock,
                "lock_expired": state.lock is not None and state.lock.locked_until < board.now,
            }
        )
