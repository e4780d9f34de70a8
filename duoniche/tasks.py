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
