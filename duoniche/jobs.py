"""The periodic-job registry (docs/jobs.md): what runs, when, with which limits.

Each app registers its jobs from its `AppConfig.ready()` with `register_job(Job(...))`;
`duoniche` keeps the registry and names no app. A body is `(*, now: datetime, dry_run: bool) ->
dict` (its stats, JSON-serialisable) and is idempotent (a second run, even forced, changes nothing
the first did); `lazy_body("app.module.function")` imports it only when the job runs. The Celery
tasks (`duoniche/tasks.py`), the beat schedule (`beat_schedule()`) and `run_job` come from these
entries; `duoniche/job_runs.py` runs them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from celery.schedules import crontab
from django.conf import settings
from django.utils.module_loading import import_string

LOCK_GRACE_SECONDS = 60
#: Crontab fields in their usual order (minute hour day-of-month month day-of-week).
CRON_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")

JobBody = Callable[..., dict[str, Any]]


# --- the registry -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One periodic job of the schedule table (docs/jobs.md).

    Exactly one of `interval_setting` (the name of a setting holding the interval in seconds; the
    period key is `now` floored to it) and `cron` (crontab fields, UTC, "*" when left out; the
    period key is the ISO week) is given.
    """

    name: str
    body: JobBody
    task: str
    soft_time_limit: int
    time_limit: int
    interval_setting: str | None = None
    cron: Mapping[str, str] | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if (self.interval_setting is None) == (self.cron is None):
            raise ValueError(f"job {self.name}: give exactly one of interval_setting and cron")
        if self.cron is not None and set(self.cron) - set(CRON_FIELDS):
            raise ValueError(f"job {self.name}: cron takes only {', '.join(CRON_FIELDS)}")
        if not 0 < self.soft_time_limit < self.time_limit:
            raise ValueError(f"job {self.name}: need 0 < soft_time_limit < time_limit")

    @property
    def lock_ttl(self) -> int:
        """Seconds a lock lives: the hard limit + 60 s, so it expires only after a killed holder."""
        return self.time_limit + LOCK_GRACE_SECONDS

    def interval_seconds(self) -> int | None:
        if self.interval_setting is None:
            return None
        seconds = int(getattr(settings, self.interval_setting))
        if seconds <= 0:
            raise ValueError(f"{self.interval_setting} must be a positive number of seconds")
        return seconds

    def schedule(self) -> float | crontab:
        """The Celery beat schedule: seconds, or a crontab (UTC)."""
        seconds = self.interval_seconds()
        if seconds is not None:
            return float(seconds)
        fields = self._cron_fields()
        return crontab(
            minute=fields["minute"],
            hour=fields["hour"],
            day_of_week=fields["day_of_week"],
            day_of_month=fields["day_of_month"],
            month_of_year=fields["month_of_year"],
        )

    def _cron_fields(self) -> dict[str, str]:
        return {name: str((self.cron or {}).get(name, "*")) for name in CRON_FIELDS}

    def period_key(self, now: datetime) -> str:
        """`2025-07-01T12:10Z` (now floored to the interval) or `2025-W27` (crontab jobs)."""
        seconds = self.interval_seconds()
        if seconds is None:
            return iso_week_key(now)
        return floored_key(now, seconds)

    def describe_schedule(self) -> str:
        seconds = self.interval_seconds()
        if seconds is not None:
            return f"every {seconds} s ({self.interval_setting})"
        fields = self._cron_fields()
        return f"crontab {' '.join(fields[name] for name in CRON_FIELDS)} (UTC)"

    def load_body(self) -> JobBody:
        return self.body


def floored_key(now: datetime, seconds: int) -> str:
    """UTC `now` floored to a multiple of `seconds` since the epoch, to the minute (or second)."""
    epoch = int(now.timestamp())
    start = datetime.fromtimestamp(epoch - epoch % seconds, tz=UTC)
    return start.strftime("%Y-%m-%dT%H:%M:%SZ" if start.second else "%Y-%m-%dT%H:%MZ")


def iso_week_key(now: datetime) -> str:
    year, week, _ = now.astimezone(UTC).isocalendar()
    return f"{year}-W{week:02d}"


#: The periodic jobs by `run_job` name (docs/jobs.md), filled by the apps' `AppConfig.ready()`
#: through `register_job`. Their Celery tasks (`duoniche/tasks.py`) and the beat schedule
#: (`beat_schedule()`) are built from these entries.
JOBS: dict[str, Job] = {}


@dataclass(frozen=True)
class LazyBody:
    """A body that imports `path` (the app's own `module.function`) only when the job runs.

    Registering a job then costs no import: a web process or `run_job --list` never loads the
    LLM and TTS clients that some bodies need.
    """

    path: str

    def __call__(self, **kwargs: Any) -> dict[str, Any]:
        body: JobBody = import_string(self.path)
        return body(**kwargs)


def lazy_body(path: str) -> LazyBody:
    return LazyBody(path)


def register_job(job: Job) -> Job:
    """Add `job` to the registry (an app's `ready()` calls this once per job)."""
    if job.name in JOBS:
        raise ValueError(f"job {job.name!r} is already registered")
    JOBS[job.name] = job
    return job


class UnknownJob(KeyError):
    """No job of that name is registered."""


def job_get(name: str) -> Job:
    try:
        return JOBS[name]
    except KeyError:
        raise UnknownJob(name) from None


def beat_schedule() -> dict[str, dict[str, Any]]:
    """`CELERY_BEAT_SCHEDULE` entries for every registered job (synced into django-celery-beat).

    Each entry routes to the default queue and expires after one interval, so a backlog while
    workers were down does not fire a job several times in a row (the period guard would skip
    them anyway).
    """
    entries: dict[str, dict[str, Any]] = {}
    for job in JOBS.values():
        options: dict[str, Any] = {"queue": settings.CELERY_TASK_DEFAULT_QUEUE}
        seconds = job.interval_seconds()
        if seconds is not None:
            options["expire_seconds"] = seconds
        entries[job.name] = {"task": job.task, "schedule": job.schedule(), "options": options}
    return entries
