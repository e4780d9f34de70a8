"""The periodic-job runner (docs/jobs.md): one path for Celery, `run_job` and the admin.

The one write path of `JobRun` and `JobLock`. The jobs themselves are in the registry
(`duoniche/jobs.py`).

Every periodic job runs through `job_run(name, ...)`:

1. **Lock**: the `JobLock` row named after the job is inserted, or taken over with a conditional
   update `WHERE name = ? AND locked_until < now`; `owner` is `host:pid:task_id` and the lock lives
   for the hard time limit + 60 s. A held lock ends the run at once (`skipped_locked`). At the end
   the lock is released only if it is still ours (conditional delete on `owner`).
2. **Period**: a non-forced `JobRun (job, period_key)` is inserted; an existing succeeded or
   skipped one means `skipped_period`; a failed one, or a running one whose runner died (we hold
   the lock, so nobody else is running it), is taken over with `attempts += 1`. `force=True`
   records a separate `forced=true` row instead.
3. **Run** the body, then mark the row succeeded with its `stats` or failed with its `error` (the
   exception also goes to Sentry). Celery does not retry periodic tasks: the next period does.
4. Metrics: `backend_job_runs_total{job, outcome}`, `backend_job_duration_seconds{job}`,
   `backend_job_last_success_timestamp_seconds{job}`.

A dry run takes no lock, records no `JobRun` and counts no metric: it only asks the body what it
would do.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from celery import current_app
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext
from kombu.exceptions import OperationalError as BrokerOperationalError

from duoniche import metrics
from duoniche.enums import JobRunStatus
from duoniche.jobs import Job, job_get
from duoniche.models import JobLock, JobRun

logger = logging.getLogger(__name__)

ERROR_MAX_CHARS = 2000
OWNER_MAX_CHARS = 100


# --- outcomes ---------------------------------------------------------------------------------


class Outcome:
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED_LOCKED = "skipped_locked"
    SKIPPED_PERIOD = "skipped_period"


@dataclass(frozen=True)
class JobOutcome:
    """What one call of the runner did; `stats` is the body's, `reason` explains skips/failures."""

    job: str
    outcome: str
    period_key: str
    stats: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    run_id: int | None = None
    attempts: int = 0
    forced: bool = False
    dry_run: bool = False
    duration_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.outcome in (Outcome.SUCCEEDED, Outcome.SKIPPED_PERIOD)

    def as_dict(self) -> dict[str, Any]:
        """JSON primitives only (a Celery task's return value)."""
        return {
            "job": self.job,
            "outcome": self.outcome,
            "period_key": self.period_key,
            "stats": self.stats,
            "reason": self.reason,
            "run_id": self.run_id,
            "attempts": self.attempts,
            "forced": self.forced,
            "dry_run": self.dry_run,
            "duration_seconds": round(self.duration_seconds, 3),
        }


# --- the lock ---------------------------------------------------------------------------------


def lock_owner(task_id: str | None = None) -> str:
    """`host:pid:task_id`; without a Celery task id, a random one keeps owners distinct."""
    task = task_id or f"local-{uuid.uuid4().hex[:12]}"
    host = socket.gethostname()[:40]
    return f"{host}:{os.getpid()}:{task}"[:OWNER_MAX_CHARS]


def job_lock_acquire(*, job: Job, owner: str, now: datetime) -> bool:
    """Insert the lock row, or take over an expired one; False while someone else holds it."""
    locked_until = now + timedelta(seconds=job.lock_ttl)
    try:
        with transaction.atomic():
            JobLock.objects.create(
                name=job.name, owner=owner, acquired_at=now, locked_until=locked_until
            )
        return True
    except IntegrityError:
        pass
    taken = JobLock.objects.filter(name=job.name, locked_until__lt=now).update(
        owner=owner, acquired_at=now, locked_until=locked_until
    )
    return taken == 1


def job_lock_release(*, job: Job, owner: str) -> bool:
    """Delete the lock only if it is still ours (it may have expired and been taken over)."""
    deleted, _ = JobLock.objects.filter(name=job.name, owner=owner).delete()
    if not deleted:
        logger.warning(
            "job %s: lock no longer held by %s at release; left in place", job.name, owner
        )
    return bool(deleted)


def _lock_holder(job: Job) -> str:
    lock = JobLock.objects.filter(name=job.name).first()
    if lock is None:
        return "lock held by another run"
    return f"lock held by {lock.owner} until {lock.locked_until.isoformat()}"


# --- the period guard -------------------------------------------------------------------------


def _period_claim(*, job: Job, period_key: str, now: datetime) -> tuple[JobRun | None, str]:
    """The non-forced run row to execute under, or (None, reason) for `skipped_period`."""
    existing = JobRun.objects.filter(job=job.name, period_key=period_key, forced=False).first()
    if existing is None:
        try:
            with transaction.atomic():
                run = JobRun.objects.create(
                    job=job.name, period_key=period_key, status=JobRunStatus.RUNNING, started_at=now
                )
            return run, ""
        except IntegrityError:
            return None, f"another run claimed period {period_key}"
    if existing.status in (JobRunStatus.SUCCEEDED, JobRunStatus.SKIPPED):
        return None, f"period {period_key} already {existing.status}"
    # Failed, or running while we hold the lock (its runner died): take it over.
    previous = existing.status
    taken = JobRun.objects.filter(pk=existing.pk, status=existing.status).update(
        status=JobRunStatus.RUNNING,
        attempts=F("attempts") + 1,
        started_at=now,
        finished_at=None,
    )
    if not taken:
        return None, f"period {period_key} changed while claiming it"
    existing.refresh_from_db()
    logger.info(
        "job %s: taking over the %s run of period %s (attempt %d)",
        job.name,
        previous,
        period_key,
        existing.attempts,
    )
    return existing, ""


def _jsonable(stats: Any) -> dict[str, Any]:
    if not isinstance(stats, dict):
        raise TypeError(f"a job body must return a dict of stats, not {type(stats).__name__}")
    normalised: dict[str, Any] = json.loads(json.dumps(stats, cls=DjangoJSONEncoder))
    return normalised


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:ERROR_MAX_CHARS]


# --- the runner -------------------------------------------------------------------------------


def job_run(
    name: str,
    *,
    now: datetime | None = None,
    force: bool = False,
    dry_run: bool = False,
    task_id: str | None = None,
) -> JobOutcome:
    """Run the job `name` once under its lock and period guard; never raises for a job failure.

    Raises `UnknownJob` for an unregistered name. Must not be called inside a transaction (job
    bodies call LLMs and other services).
    """
    job = job_get(name)
    now = now or timezone.now()
    period_key = job.period_key(now)
    if dry_run:
        return _dry_run(job=job, now=now, period_key=period_key, force=force)

    owner = lock_owner(task_id)
    if not job_lock_acquire(job=job, owner=owner, now=now):
        reason = _lock_holder(job)
        logger.info("job %s: skipped, %s", job.name, reason)
        metrics.job_runs.labels(job=job.name, outcome=Outcome.SKIPPED_LOCKED).inc()
        return JobOutcome(
            job=job.name,
            outcome=Outcome.SKIPPED_LOCKED,
            period_key=period_key,
            reason=reason,
            forced=force,
        )
    try:
        return _run_locked(job=job, now=now, period_key=period_key, force=force)
    finally:
        job_lock_release(job=job, owner=owner)


def _run_locked(*, job: Job, now: datetime, period_key: str, force: bool) -> JobOutcome:
    if force:
        run: JobRun | None = JobRun.objects.create(
            job=job.name,
            period_key=period_key,
            forced=True,
            status=JobRunStatus.RUNNING,
            started_at=now,
        )
        reason = ""
    else:
        run, reason = _period_claim(job=job, period_key=period_key, now=now)
    if run is None:
        logger.info("job %s: skipped, %s", job.name, reason)
        metrics.job_runs.labels(job=job.name, outcome=Outcome.SKIPPED_PERIOD).inc()
        return JobOutcome(
            job=job.name, outcome=Outcome.SKIPPED_PERIOD, period_key=period_key, reason=reason
        )

    logger.info("job %s: running period %s (attempt %d)", job.name, period_key, run.attempts)
    started = time.monotonic()
    try:
        stats = _jsonable(job.load_body()(now=now, dry_run=False))
    except BaseException as exc:
        # BaseException too: a worker shutting down still leaves a failed row to take over.
        duration = time.monotonic() - started
        error = _error_text(exc)
        JobRun.objects.filter(pk=run.pk).update(
            status=JobRunStatus.FAILED, finished_at=timezone.now(), error=error
        )
        metrics.job_runs.labels(job=job.name, outcome=Outcome.FAILED).inc()
        metrics.job_duration.labels(job=job.name).observe(duration)
        if not isinstance(exc, Exception):
            raise
        logger.error("job %s failed in period %s: %s", job.name, period_key, error)
        import sentry_sdk  # only when reporting: importing it costs every process 0.15 s

        sentry_sdk.capture_exception(exc)
        return JobOutcome(
            job=job.name,
            outcome=Outcome.FAILED,
            period_key=period_key,
            reason=error,
            run_id=run.pk,
            attempts=run.attempts,
            forced=force,
            duration_seconds=duration,
        )

    duration = time.monotonic() - started
    finished_at = timezone.now()
    JobRun.objects.filter(pk=run.pk).update(
        status=JobRunStatus.SUCCEEDED, finished_at=finished_at, stats=stats
    )
    metrics.job_runs.labels(job=job.name, outcome=Outcome.SUCCEEDED).inc()
    metrics.job_duration.labels(job=job.name).observe(duration)
    metrics.job_last_success.labels(job=job.name).set(finished_at.timestamp())
    logger.info("job %s succeeded in %.1f s", job.name, duration)
    return JobOutcome(
        job=job.name,
        outcome=Outcome.SUCCEEDED,
        period_key=period_key,
        stats=stats,
        run_id=run.pk,
        attempts=run.attempts,
        forced=force,
        duration_seconds=duration,
    )


def _dry_run(*, job: Job, now: datetime, period_key: str, force: bool) -> JobOutcome:
    started = time.monotonic()
    try:
        stats = _jsonable(job.load_body()(now=now, dry_run=True))
    except Exception as exc:
        logger.exception("job %s: dry run failed", job.name)
        return JobOutcome(
            job=job.name,
            outcome=Outcome.FAILED,
            period_key=period_key,
            reason=_error_text(exc),
            forced=force,
            dry_run=True,
            duration_seconds=time.monotonic() - started,
        )
    return JobOutcome(
        job=job.name,
        outcome=Outcome.SUCCEEDED,
        period_key=period_key,
        stats=stats,
        forced=force,
        dry_run=True,
        duration_seconds=time.monotonic() - started,
    )


# --- staff: run now, and pruning ------------------------------------------------------------------


class JobNotQueued(Exception):
    """The job could not be handed to a worker; the message says why, for staff."""


def job_enqueue_forced(*, name: str) -> str:
    """Queue a forced run of `name` for a worker (the admin's Run now); returns the task id.

    Never runs the job here: without a broker (`task_always_eager`, the `make run` default) it
    refuses and names the command instead. A broker that does not answer fails within its
    connection timeouts (`CELERY_BROKER_*`), never hangs the request.
    """
    job = job_get(name)
    if current_app.conf.task_always_eager:
        raise JobNotQueued(
            gettext("no Celery broker is configured; run `manage.py run_job %(name)s --force`")
            % {"name": name}
        )
    try:
        result = current_app.send_task(job.task, kwargs={"force": True})
    except (BrokerOperationalError, OSError) as exc:
        raise JobNotQueued(
            gettext("the broker did not take it (%(error)s)") % {"error": type(exc).__name__}
        ) from exc
    logger.info("job %s: forced run queued as task %s", name, result.id)
    return str(result.id)


def job_runs_prune(*, now: datetime, dry_run: bool) -> dict[str, Any]:
    """The `job_runs_prune` body: finished runs older than JOB_RUN_RETENTION_DAYS are deleted.

    A run still `running` is kept whatever its age (its runner may be alive, or the next period
    takes it over). Deleting an old period's row never lets it run again: periods are only ever
    claimed for the current interval or week.
    """
    cutoff = now - timedelta(days=settings.JOB_RUN_RETENTION_DAYS)
    old = JobRun.objects.filter(started_at__lt=cutoff).exclude(status=JobRunStatus.RUNNING)
    if dry_run:
        return {"would_delete": old.count(), "before": cutoff.isoformat()}
    deleted, _ = old.delete()
    return {"deleted": deleted, "before": cutoff.isoformat()}
