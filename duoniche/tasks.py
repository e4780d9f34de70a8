"""Celery tasks of the periodic jobs (jobs.md §1.1): each one calls the runner, nothing else.

Names, time limits and the lock come from the registry in `duoniche.jobs`. The tasks take JSON
primitives only, accept `**kwargs` so that a rolling deploy never drops a message, acknowledge
late (the runner's lock and period guard make a redelivery harmless) and are never retried by
Celery: a failed run is retried by the next period. They return the outcome as a dict (results
are ignored; it shows up in the worker log).
"""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from duoniche.jobs import JOBS, job_run

_REFILL_STOCK = JOBS["refill_stock"]
_QUALITY_MONITOR = JOBS["quality_monitor"]
_REVIEW_PROCESSOR = JOBS["review_processor"]
_METRICS_UPDATER = JOBS["metrics_updater"]
_NOTIFICATION_SCHEDULER = JOBS["notification_scheduler"]
_WEEKLY_REPORTS = JOBS["weekly_reports"]


@shared_task(
    bind=True,
    name=_REFILL_STOCK.task,
    acks_late=True,
    ignore_result=True,
    soft_time_limit=_REFILL_STOCK.soft_time_limit,
    time_limit=_REFILL_STOCK.time_limit,
)
def refill_stock(self: Task, force: bool = False, **kwargs: Any) -> dict[str, Any]:
    """Refill the exercise stock and repair broken story audio (jobs.md §3)."""
    return job_run(_REFILL_STOCK.name, force=force, task_id=self.request.id).as_dict()


@shared_task(
    bind=True,
    name=_QUALITY_MONITOR.task,
    acks_late=True,
    ignore_result=True,
    soft_time_limit=_QUALITY_MONITOR.soft_time_limit,
    time_limit=_QUALITY_MONITOR.time_limit,
)
def quality_monitor(self: Task, force: bool = False, **kwargs: Any) -> dict[str, Any]:
    """Recompute user ratings and flag exercises for review (jobs.md §4)."""
    return job_run(_QUALITY_MONITOR.name, force=force, task_id=self.request.id).as_dict()


@shared_task(
    bind=True,
    name=_REVIEW_PROCESSOR.task,
    acks_late=True,
    ignore_result=True,
    soft_time_limit=_REVIEW_PROCESSOR.soft_time_limit,
    time_limit=_REVIEW_PROCESSOR.time_limit,
)
def review_processor(self: Task, force: bool = False, **kwargs: Any) -> dict[str, Any]:
    """Decide on a batch of exercises flagged for review (jobs.md §5)."""
    return job_run(_REVIEW_PROCESSOR.name, force=force, task_id=self.request.id).as_dict()


@shared_task(
    bind=True,
    name=_METRICS_UPDATER.task,
    acks_late=True,
    ignore_result=True,
    soft_time_limit=_METRICS_UPDATER.soft_time_limit,
    time_limit=_METRICS_UPDATER.time_limit,
)
def metrics_updater(self: Task, force: bool = False, **kwargs: Any) -> dict[str, Any]:
    """Observe ended sessions and publish the active users (jobs.md §9)."""
    return job_run(_METRICS_UPDATER.name, force=force, task_id=self.request.id).as_dict()


@shared_task(
    bind=True,
    name=_WEEKLY_REPORTS.task,
    acks_late=True,
    ignore_result=True,
    soft_time_limit=_WEEKLY_REPORTS.soft_time_limit,
    time_limit=_WEEKLY_REPORTS.time_limit,
)
def weekly_reports(self: Task, force: bool = False, **kwargs: Any) -> dict[str, Any]:
    """Create last week's short reports and notify them (jobs.md §7)."""
    return job_run(_WEEKLY_REPORTS.name, force=force, task_id=self.request.id).as_dict()


@shared_task(
    bind=True,
    name=_NOTIFICATION_SCHEDULER.task,
    acks_late=True,
    ignore_result=True,
    soft_time_limit=_NOTIFICATION_SCHEDULER.soft_time_limit,
    time_limit=_NOTIFICATION_SCHEDULER.time_limit,
)
def notification_scheduler(self: Task, force: bool = False, **kwargs: Any) -> dict[str, Any]:
    """Session and long-break reminders, report deliveries (jobs.md §6)."""
    return job_run(_NOTIFICATION_SCHEDULER.name, force=force, task_id=self.request.id).as_dict()
