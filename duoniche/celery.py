"""The Celery app: configured from Django settings (`CELERY_*`), tasks autodiscovered per app.

On top of the settings (docs/jobs.md): a visibility timeout longer than any task's hard limit (late
acks mean an unacknowledged message is redelivered after it), our own logging config kept, and the
beat schedule of the periodic jobs, built from the registry in `duoniche.jobs` when beat reads it
(Django is set up by then; at import time neither settings nor models may be read).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "duoniche.settings")

#: Longer than the longest hard time limit of the jobs (weekly_reports: 3600 s, docs/jobs.md), so
#: a task that is still running is never redelivered.
VISIBILITY_TIMEOUT_SECONDS = 3700


class LazyBeatSchedule(Mapping[str, dict[str, Any]]):
    """`beat_schedule`: the static entries of `CELERY_BEAT_SCHEDULE` plus every registered job.

    Built on each read (cheap: the registry and a few settings), never at import time.
    """

    def __init__(self, static: Mapping[str, dict[str, Any]] | None = None) -> None:
        self._static = dict(static or {})

    def _built(self) -> dict[str, dict[str, Any]]:
        from duoniche.jobs import beat_schedule

        return {**self._static, **beat_schedule()}

    def __getitem__(self, key: str) -> dict[str, Any]:
        return self._built()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._built())

    def __len__(self) -> int:
        return len(self._built())


app = Celery("duoniche")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _override(conf: Any, key: str, value: Any) -> None:
    """Set `key` so that it wins over the Django setting `CELERY_<KEY>` (looked up first)."""
    conf[f"CELERY_{key.upper()}"] = value


@app.on_after_configure.connect
def _configure(sender: Celery, **kwargs: Any) -> None:
    """Runs once, right after the settings are read."""
    conf = sender.conf
    transport_options = dict(conf.broker_transport_options or {})
    _override(
        conf,
        "broker_transport_options",
        {**transport_options, "visibility_timeout": VISIBILITY_TIMEOUT_SECONDS},
    )
    _override(conf, "worker_hijack_root_logger", False)
    _override(conf, "beat_schedule", LazyBeatSchedule(conf.beat_schedule))


@worker_init.connect
def _worker_metrics(**kwargs: Any) -> None:
    """A worker exports its host's metrics on WORKER_METRICS_PORT when set (docs/operations)."""
    from django.conf import settings

    from duoniche.metrics_files import worker_exporter_start

    worker_exporter_start(settings.WORKER_METRICS_PORT)
