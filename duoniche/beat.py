"""The beat scheduler: django-celery-beat's database scheduler, keeping time across restarts.

django-celery-beat saves every entry's row when beat starts (from the registered schedule), which
stamps the row's `date_changed`; an entry that has never run takes that stamp as its last run. So
each restart pushed a never-run job's first run one full interval further: with beat restarting
every hour, a 2-hour or 3-hour job never ran. Here an entry that has no last run gets one stored
the first time beat sees it, and later starts count from that. Runs themselves are stored as
before (every few minutes and on shutdown); a run lost to a hard kill is fired again after the
restart and the period guard of `duoniche.job_runs` makes it a no-op.

Beat also proves it is alive by touching BEAT_HEARTBEAT_FILE on every look at the schedule (the
compose file's healthcheck reads its age).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler, ModelEntry


class PersistentEntry(ModelEntry):
    def __init__(self, model: PeriodicTask, app: Any = None) -> None:
        never_ran = model.last_run_at is None
        super().__init__(model, app=app)
        if never_ran and model.pk is not None and model.enabled:
            # Only if still unset: another beat starting at the same moment keeps the first stamp.
            PeriodicTask.objects.filter(pk=model.pk, last_run_at__isnull=True).update(
                last_run_at=self.last_run_at
            )


class DuonicheScheduler(DatabaseScheduler):
    Entry = PersistentEntry

    def tick(self, *args: Any, **kwargs: Any) -> float:
        """One look at the schedule (at least every 5 s); touches BEAT_HEARTBEAT_FILE if set, so
        a container healthcheck can tell a live beat from a stuck one."""
        delay: float = super().tick(*args, **kwargs)
        if settings.BEAT_HEARTBEAT_FILE:
            Path(settings.BEAT_HEARTBEAT_FILE).touch()
        return delay
