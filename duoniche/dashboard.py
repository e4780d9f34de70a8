"""The operations dashboard on the admin index: the page, its registry of sections, LLM and jobs.

Each app adds its sections from its `AppConfig.ready()` (`register_section`): the exercise bank,
the learners' activity, the Stars revenue and the notifications live in that app's
`dashboard.py`; this module knows no app. A section's selectors are one aggregate query each and
return plain data. `dashboard_build` runs the sections the staff member may see (one view
permission each) and shapes them for `templates/admin/index.html`: every number carries the link
to the filtered changelist behind it, and the series come with server-side SVG charts
(`duoniche/svg.py`).

Each section's figures are reused from the cache for up to `CACHE_SECONDS` (a minute): the bank
and the attempts are large tables, and a dashboard needs no fresher numbers; the page says when
they were computed.

Days are calendar days in the current time zone (UTC), matching `TruncDate`.

History that is not stored is not invented: exercises *served* per day are not kept
(`BotProfile.exercises_get_in_session` is a running counter), so "answered" counts recorded
attempts per day.
"""

from __future__ import annotations

import functools
import logging
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
    JobRunStatus,
    LLMPurpose,
)
from duoniche.jobs import JOBS
from duoniche.models import JobLock, JobRun, LLMCall

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

DAYS = 30
#: How long a section's figures are reused (the page shows their age).
CACHE_SECONDS = 60


# --- selectors: one aggregate query each -------------------------------------------------------


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
        LLMCall.objects.filter(created_at__gte=day_start(days[0]))
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


# --- the sections: registered by the apps (each app's dashboard.py), in `order` ------------------


@dataclass(frozen=True)
class Section:
    """A part of the index page: the view permission it needs and what it puts on the board."""

    name: str
    permission: str
    build: Callable[[Dashboard], None]
    order: int


SECTIONS: dict[str, Section] = {}


def register_section(
    *, name: str, permission: str, build: Callable[[Dashboard], None], order: int
) -> None:
    """Add a section (an app's `ready()` calls this); its figures are shown to who may view them."""
    SECTIONS[name] = Section(name=name, permission=permission, build=build, order=order)


def cached(board: Dashboard, key: str, compute: Callable[[], _T]) -> _T:
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


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


def changelist(model: str, **params: str | int) -> str:
    return _changelist_url(model, get_script_prefix(), get_urlconf(), tuple(params.items()))


@functools.lru_cache(maxsize=4096)
def _changelist_url(
    model: str, prefix: str, urlconf: Any, params: tuple[tuple[str, str | int], ...]
) -> str:
    """Cached: the dashboard links hundreds of (mostly repeated) changelist filters."""
    url = reverse(f"admin:{model}_changelist", urlconf=urlconf)
    return f"{url}?{urlencode(params)}" if params else url


def on_day(field_name: str, day: date, days: int = 1) -> dict[str, str]:
    """Changelist parameters for `day` (or `days` days from it), as aware datetimes."""
    return {
        f"{field_name}__gte": day_start(day).isoformat(),
        f"{field_name}__lt": day_start(day + timedelta(days=days)).isoformat(),
    }


def day_label(day: date) -> str:
    return day.strftime("%m-%d")


def dashboard_build(*, now: datetime, can_view: Callable[[str], bool]) -> Dashboard:
    """Everything the index shows to someone with these permissions (a section per permission)."""
    today = timezone.localdate(now)
    days = [today - timedelta(days=offset) for offset in range(DAYS - 1, -1, -1)]
    allowed = sorted(
        (section for section in SECTIONS.values() if can_view(section.permission)),
        key=lambda section: section.order,
    )
    board = Dashboard(now=now, days=days, sections={section.name for section in allowed})
    for section in allowed:
        section.build(board)
    return board


def dashboard_llm(board: Dashboard) -> None:
    days = board.days
    usage = cached(board, f"llm:{days[0]}:{days[-1]}", lambda: llm_usage_per_day(days=days))
    model = "duoniche_llmcall"
    purposes = list(LLMPurpose.values)
    by_day: dict[tuple[date, str], LLMUsage] = {(row.day, row.purpose): row for row in usage}
    labels = [day_label(day) for day in board.days]
    window = on_day("created_at", board.days[0], DAYS)

    hrefs = {
        purpose: [
            changelist(model, purpose__exact=purpose, **on_day("created_at", day))
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
                    changelist(model, purpose__exact=purpose, **window),
                ),
                "failed": Number(
                    sum(row.failed for row in rows),
                    changelist(model, purpose__exact=purpose, ok__exact=0, **window),
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
    today_href = changelist(model, **on_day("created_at", board.days[-1]))
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
        "any_calls": bool(usage),
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


def dashboard_jobs(board: Dashboard) -> None:
    for state in cached(board, "jobs", lambda: job_states(registered=JOBS)):
        run = state.last
        board.jobs.append(
            {
                "name": state.name,
                "registered": state.registered,
                "runs": changelist("duoniche_jobrun", job__exact=state.name),
                "last": run,
                "last_href": reverse("admin:duoniche_jobrun_change", args=[run.pk]) if run else "",
                "failed": run is not None and run.status == JobRunStatus.FAILED,
                "error": (run.error[:200] if run is not None else ""),
                "lock": state.lock,
                "lock_expired": state.lock is not None and state.lock.locked_until < board.now,
            }
        )


register_section(name="llm", permission="duoniche.view_llmcall", build=dashboard_llm, order=40)
register_section(name="jobs", permission="duoniche.view_jobrun", build=dashboard_jobs, order=60)
