"""Beat keeps every job's cadence however often it restarts (issue 13 item 3).

Beat is simulated on a fake clock (time-machine): each "start" builds a fresh scheduler from the
database as `celery beat` does, then the clock advances minute by minute, firing what is due; every
few minutes the scheduler stores its runs, as beat does, and a start may follow a hard kill (no
final store). The runs are counted per job. django-celery-beat's own scheduler, in the same
simulation, never runs a 2-hour job when beat restarts every 50 minutes.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django_celery_beat.schedulers import DatabaseScheduler

from duoniche.beat import DuonicheScheduler
from duoniche.celery import app
from duoniche.jobs import JOBS

pytestmark = pytest.mark.django_db(transaction=True)  # the scheduler closes old DB connections

START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # a Monday
STEP = timedelta(minutes=1)  # divides every interval, so a simulated run is never late
SYNC_EVERY = timedelta(minutes=3)  # django-celery-beat's default


def simulate(
    scheduler_class: type[Any], *, days: float, restart_every: timedelta, hard_kill: bool
) -> Counter[str]:
    """Run beat for `days` on the fake clock, restarting it every `restart_every`."""
    runs: Counter[str] = Counter()
    now = START
    end = START + timedelta(days=days)

    def sent(entry: Any, producer: Any = None, advance: bool = True, **kwargs: Any) -> None:
        runs[entry.name] += 1  # instead of publishing the task

    with time_machine.travel(now, tick=False) as clock:
        while now < end:
            scheduler = scheduler_class(app=app)  # a beat start
            scheduler._finalize.cancel()  # no store at interpreter exit, after the test DB is gone
            scheduler.apply_async = sent
            started = last_sync = now
            while now < end and now - started < restart_every:
                if scheduler.tick() > 0:  # 0: it sent a due task and there may be another
                    now += STEP  # beat would look sooner; a run is at most one step late
                    clock.move_to(now)
                if now - last_sync >= SYNC_EVERY:
                    scheduler.sync()
                    last_sync = now
            if not hard_kill:
                scheduler.sync()  # a graceful stop stores the runs since the last store
    return runs


def expected_runs(name: str, days: int) -> int:
    seconds = JOBS[name].interval_seconds()
    if seconds is None:
        return 1  # the weekly cron jobs, due on the simulated Monday
    return int(timedelta(days=days).total_seconds() // seconds) - 1


@pytest.mark.parametrize("hard_kill", [False, True], ids=["graceful", "killed"])
def test_every_job_keeps_its_cadence_when_beat_restarts_every_50_minutes(hard_kill):
    days = 1  # a Monday: the weekly jobs fall on it too
    runs = simulate(
        DuonicheScheduler, days=days, restart_every=timedelta(minutes=50), hard_kill=hard_kill
    )

    for name in JOBS:
        assert runs[name] >= expected_runs(name, days), (name, runs[name])
    # Restarts never make a long job run more often than its cadence: a run lost to a kill is
    # fired once more (the period guard makes that a no-op), never a burst.
    assert runs["review_processor"] <= days * 8 + (days * 24 * 60 // 50 if hard_kill else 0)
    assert runs["quality_monitor"] <= days * 12 + (days * 24 * 60 // 50 if hard_kill else 0)


def test_without_it_a_restarting_beat_never_runs_the_long_jobs():
    """The fault this scheduler fixes, shown on the stock one (guards the simulation too)."""
    runs = simulate(
        DatabaseScheduler, days=0.5, restart_every=timedelta(minutes=50), hard_kill=False
    )  # twelve hours: six 2-hour periods, four 3-hour ones

    assert runs["quality_monitor"] == 0  # every 2 h
    assert runs["review_processor"] == 0  # every 3 h
    assert runs["refill_stock"] > 0  # every 10 min: short jobs still run
