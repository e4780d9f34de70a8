"""Celery tasks of the periodic jobs (docs/jobs.md): each one calls the runner, nothing else.

Names, time limits and the lock come from the registry in `duoniche.jobs`. The tasks take JSON
primitives only, accept `**kwargs` so that a rolling deploy never drops a message, acknowledge
late (the runner's lock and period guard make a redelivery harmless) and are never retried by
Celery: a failed run is retried by the next period. They return the outcome as a dict (results
are ignored; it shows up in the worker log).
"""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from duoniche.job_runs import job_run
from duoniche.jobs import JOBS, Job


def _job_task(job: Job) -> Task:
    """The Celery task that runs `job` through the runner (one per registered job)."""

    def run(self: Task, force: bool = False, **kwargs: Any) -> dict[str, Any]:
        return job_run(job.name, force=force, task_id=self.request.id).as_dict()

    run.__name__ = run.__qualname__ = job.name
    run.__doc__ = f"Run the {job.name} job: {job.description}."
    return shared_task(
        bind=True,
        name=job.task,
        acks_late=True,
        ignore_result=True,
        soft_time_limit=job.soft_time_limit,
        time_limit=job.time_limit,
    )(run)


#: The tasks by job name. Celery imports this module once the apps are ready (autodiscovery), so
#: every job the apps registered has its task.
TASKS: dict[str, Task] = {name: _job_task(job) for name, job in JOBS.items()}
