"""The periodic-job runner (docs/jobs.md): lock, period guard, outcomes,
metrics, and `manage.py run_job`.

Jobs under test are registered in `duoniche.jobs.JOBS` for the test only; their bodies are the
module-level functions below, resolved by dotted path exactly like the real ones.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path

import pytest
import sentry_sdk
from django.core.management import CommandError, call_command
from django.utils import timezone
from prometheus_client import REGISTRY
from sentry_sdk.transport import Transport

from duoniche import job_runs, jobs
from duoniche import tasks as job_tasks
from duoniche.celery import app
from duoniche.enums import JobRunStatus
from duoniche.job_runs import Outcome, job_run
from duoniche.jobs import JOBS, Job, UnknownJob, lazy_body
from duoniche.models import JobLock, JobRun
from tests.duoniche.factories import JobLockFactory, JobRunFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2025, 7, 1, 12, 17, 31, tzinfo=UTC)
PERIOD = "2025-07-01T12:10Z"

# --- test job bodies (resolved by dotted path) --------------------------------------------------

CALLS: list[dict] = []
SEEN: dict = {}
GATE = {"entered": threading.Event(), "release": threading.Event()}


def ok_body(*, now, dry_run):
    CALLS.append({"now": now, "dry_run": dry_run})
    return {"done": 1, "dry_run": dry_run, "when": now}


def failing_once_body(*, now, dry_run):
    CALLS.append({"now": now, "dry_run": dry_run})
    if len(CALLS) == 1:
        raise RuntimeError("the provider fell over")
    return {"done": 1}


def long_error_body(*, now, dry_run):
    raise ValueError("x" * 5000)


def blocking_body(*, now, dry_run):
    GATE["entered"].set()
    assert GATE["release"].wait(20), "the test never released the job"
    return {"done": 1}


def stealing_body(*, now, dry_run):
    JobLock.objects.filter(name="t_steal").update(owner="other-host:1:thief")
    return {"done": 1}


def spy_body(*, now, dry_run):
    SEEN["lock"] = JobLock.objects.get(name="t_spy")
    return {}


def not_a_dict_body(*, now, dry_run):
    return ["not", "stats"]


def _job(name: str, body: str, **overrides) -> Job:
    fields = {
        "name": name,
        "body": globals()[body],
        "task": f"tests.{name}",
        "soft_time_limit": 50,
        "time_limit": 55,
        "interval_setting": "EXERCISE_REFILL_INTERVAL",
    }
    return Job(**{**fields, **overrides})


@pytest.fixture(autouse=True)
def _test_jobs(monkeypatch, settings):
    settings.EXERCISE_REFILL_INTERVAL = 600
    CALLS.clear()
    GATE["entered"].clear()
    GATE["release"].clear()
    for name, body in (
        ("t_ok", "ok_body"),
        ("t_fail_once", "failing_once_body"),
        ("t_long_error", "long_error_body"),
        ("t_block", "blocking_body"),
        ("t_steal", "stealing_body"),
        ("t_not_dict", "not_a_dict_body"),
        ("t_spy", "spy_body"),
    ):
        monkeypatch.setitem(JOBS, name, _job(name, body))


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _runs(job: str) -> float:
    return _sample("backend_job_runs_total", job=job, outcome=Outcome.SUCCEEDED)


@pytest.fixture
def sentry_events():
    """A real Sentry client whose transport keeps the events in a list."""
    events: list[dict] = []

    class ListTransport(Transport):
        def capture_envelope(self, envelope):
            event = envelope.get_event()
            if event is not None:
                events.append(event)

    scope = sentry_sdk.get_global_scope()
    previous = scope.client
    scope.set_client(
        sentry_sdk.Client(
            dsn="https://public@sentry.invalid/1",
            transport=ListTransport,
            default_integrations=False,
        )
    )
    try:
        yield events
    finally:
        scope.set_client(previous)


# --- period keys and the registry ---------------------------------------------------------------


def test_period_keys():
    assert jobs.floored_key(NOW, 600) == "2025-07-01T12:10Z"
    assert jobs.floored_key(NOW, 7200) == "2025-07-01T12:00Z"
    assert jobs.floored_key(NOW, 10800) == "2025-07-01T12:00Z"
    assert jobs.floored_key(NOW, 60) == "2025-07-01T12:17Z"
    assert jobs.floored_key(NOW, 45) == "2025-07-01T12:17:15Z"
    assert jobs.iso_week_key(NOW) == "2025-W27"
    assert jobs.iso_week_key(datetime(2027, 1, 1, tzinfo=UTC)) == "2026-W53"


def test_refill_stock_is_registered_as_in_the_schedule_table(settings):
    job = JOBS["refill_stock"]

    assert (job.task, job.soft_time_limit, job.time_limit, job.lock_ttl) == (
        "exercises.refill_stock",
        1500,
        1800,
        1860,
    )
    assert job.body == lazy_body("exercises.refill.stock_refill")
    assert job.period_key(NOW) == PERIOD
    settings.EXERCISE_REFILL_INTERVAL = 300
    assert job.period_key(NOW) == "2025-07-01T12:15Z"


def test_a_job_needs_exactly_one_kind_of_schedule():
    with pytest.raises(ValueError, match="exactly one"):
        _job("t_bad", "ok_body", cron={"minute": "0"})
    with pytest.raises(ValueError, match="cron takes only"):
        _job("t_bad", "ok_body", interval_setting=None, cron={"minutes": "0"})
    with pytest.raises(ValueError, match="exactly one"):
        _job("t_bad", "ok_body", interval_setting=None)
    with pytest.raises(ValueError, match="soft_time_limit"):
        _job("t_bad", "ok_body", soft_time_limit=60)


def test_crontab_jobs_use_the_iso_week_and_a_crontab_schedule():
    weekly = _job(
        "t_weekly",
        "ok_body",
        interval_setting=None,
        cron={"minute": "0", "hour": "9,10,11,12", "day_of_week": "mon"},
    )

    assert weekly.period_key(NOW) == "2025-W27"
    schedule = weekly.schedule()
    assert schedule.hour == {9, 10, 11, 12}
    assert schedule.day_of_week == {1}
    assert weekly.describe_schedule() == "crontab 0 9,10,11,12 * * mon (UTC)"


def test_beat_schedule_has_every_registered_job(settings):
    schedule = jobs.beat_schedule()

    assert schedule["refill_stock"] == {
        "task": "exercises.refill_stock",
        "schedule": 600.0,
        "options": {"queue": "duoniche", "expire_seconds": 600},
    }
    assert set(schedule) == set(JOBS)


def test_celery_app_has_the_schedule_and_the_transport_options():
    conf = app.conf

    assert conf.beat_schedule["refill_stock"]["task"] == "exercises.refill_stock"
    assert conf.broker_transport_options["visibility_timeout"] == 3700
    assert conf.broker_transport_options["visibility_timeout"] > max(
        job.time_limit for job in JOBS.values()
    )
    assert conf.worker_hijack_root_logger is False


@pytest.mark.django_db(transaction=True)  # the scheduler closes old DB connections
def test_beat_syncs_the_schedule_into_django_celery_beat():
    """What beat does at start: the code schedule becomes rows staff can see and pause."""
    from django_celery_beat.models import PeriodicTask

    from duoniche.beat import DuonicheScheduler

    DuonicheScheduler(app=app)

    task = PeriodicTask.objects.get(name="refill_stock")
    assert task.task == "exercises.refill_stock"
    assert (task.interval.every, task.interval.period) == (600, "seconds")
    assert task.queue == "duoniche"
    assert task.expire_seconds == 600
    assert task.enabled


def test_the_refill_task_is_registered_with_its_limits():
    task = app.tasks["exercises.refill_stock"]

    assert task.name == job_tasks.TASKS["refill_stock"].name
    assert (task.soft_time_limit, task.time_limit) == (1500, 1800)
    assert task.acks_late is True
    assert task.ignore_result is True
    assert not getattr(task, "autoretry_for", ())


def test_the_registry_imports_no_app_until_a_job_runs():
    """`duoniche` does not import the apps: listing the jobs never loads a job body."""
    code = (
        "import django, sys; django.setup(); "
        "from django.core.management import call_command; call_command('run_job', '--list'); "
        "assert 'exercises.refill' not in sys.modules, 'body imported'"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "duoniche.settings_test"},
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "exercises.refill_stock" in result.stdout


# --- the runner: success, period guard, forced runs ---------------------------------------------


def test_a_run_records_a_succeeded_period_row_and_releases_the_lock():
    before = _runs("t_ok")

    outcome = job_run("t_ok", now=NOW)

    assert outcome.outcome == Outcome.SUCCEEDED
    assert outcome.stats == {"done": 1, "dry_run": False, "when": "2025-07-01T12:17:31Z"}
    run = JobRun.objects.get(job="t_ok")
    assert (run.period_key, run.status, run.forced, run.attempts) == (
        PERIOD,
        JobRunStatus.SUCCEEDED,
        False,
        1,
    )
    assert run.stats == outcome.stats
    assert run.started_at == NOW
    assert run.finished_at is not None
    assert run.error == ""
    assert outcome.run_id == run.pk
    assert not JobLock.objects.filter(name="t_ok").exists()
    assert CALLS == [{"now": NOW, "dry_run": False}]
    assert _runs("t_ok") == before + 1


def test_a_second_run_in_the_same_period_is_skipped():
    job_run("t_ok", now=NOW)

    second = job_run("t_ok", now=NOW + timedelta(minutes=2))

    assert second.outcome == Outcome.SKIPPED_PERIOD
    assert "already succeeded" in second.reason
    assert second.ok
    assert JobRun.objects.filter(job="t_ok").count() == 1
    assert len(CALLS) == 1
    assert not JobLock.objects.filter(name="t_ok").exists()


def test_the_next_period_runs_again():
    job_run("t_ok", now=NOW)

    outcome = job_run("t_ok", now=NOW + timedelta(minutes=10))

    assert outcome.outcome == Outcome.SUCCEEDED
    assert sorted(JobRun.objects.filter(job="t_ok").values_list("period_key", flat=True)) == [
        PERIOD,
        "2025-07-01T12:20Z",
    ]


def test_a_skipped_period_row_also_means_skipped_period():
    JobRunFactory(job="t_ok", period_key=PERIOD, status=JobRunStatus.SKIPPED)

    assert job_run("t_ok", now=NOW).outcome == Outcome.SKIPPED_PERIOD
    assert CALLS == []


def test_forced_runs_record_separate_rows():
    job_run("t_ok", now=NOW)

    first = job_run("t_ok", now=NOW, force=True)
    second = job_run("t_ok", now=NOW, force=True)

    assert first.outcome == second.outcome == Outcome.SUCCEEDED
    assert first.forced
    rows = JobRun.objects.filter(job="t_ok", period_key=PERIOD)
    assert rows.filter(forced=False).count() == 1
    assert rows.filter(forced=True, status=JobRunStatus.SUCCEEDED).count() == 2
    assert len(CALLS) == 3


def test_a_forced_run_does_not_use_up_the_period():
    job_run("t_ok", now=NOW, force=True)

    outcome = job_run("t_ok", now=NOW)

    assert outcome.outcome == Outcome.SUCCEEDED
    assert JobRun.objects.get(job="t_ok", forced=False).status == JobRunStatus.SUCCEEDED


# --- failures -----------------------------------------------------------------------------------


def test_a_failed_run_is_recorded_and_reported_to_sentry(sentry_events):
    before = _sample("backend_job_runs_total", job="t_fail_once", outcome=Outcome.FAILED)

    outcome = job_run("t_fail_once", now=NOW)

    assert outcome.outcome == Outcome.FAILED
    assert not outcome.ok
    assert outcome.reason == "RuntimeError: the provider fell over"
    run = JobRun.objects.get(job="t_fail_once")
    assert run.status == JobRunStatus.FAILED
    assert run.error == "RuntimeError: the provider fell over"
    assert run.finished_at is not None
    assert not JobLock.objects.filter(name="t_fail_once").exists()
    assert _sample("backend_job_runs_total", job="t_fail_once", outcome="failed") == before + 1
    assert len(sentry_events) == 1
    exception = sentry_events[0]["exception"]["values"][-1]
    assert (exception["type"], exception["value"]) == ("RuntimeError", "the provider fell over")


def test_a_failed_run_is_taken_over_in_the_same_period_with_attempts_2():
    job_run("t_fail_once", now=NOW)

    retry = job_run("t_fail_once", now=NOW + timedelta(minutes=2))

    assert retry.outcome == Outcome.SUCCEEDED
    assert retry.attempts == 2
    run = JobRun.objects.get(job="t_fail_once")
    assert (run.status, run.attempts, run.stats) == (JobRunStatus.SUCCEEDED, 2, {"done": 1})
    assert run.error == "RuntimeError: the provider fell over"  # the last error stays visible
    assert JobRun.objects.filter(job="t_fail_once").count() == 1


def test_a_running_row_whose_runner_died_is_taken_over():
    JobRunFactory(job="t_ok", period_key=PERIOD, status=JobRunStatus.RUNNING, attempts=1)

    outcome = job_run("t_ok", now=NOW)

    assert outcome.outcome == Outcome.SUCCEEDED
    run = JobRun.objects.get(job="t_ok")
    assert (run.status, run.attempts) == (JobRunStatus.SUCCEEDED, 2)


def test_the_error_is_truncated_to_2000_characters():
    outcome = job_run("t_long_error", now=NOW)

    run = JobRun.objects.get(job="t_long_error")
    assert run.status == JobRunStatus.FAILED
    assert len(run.error) == 2000
    assert run.error.startswith("ValueError: xxx")
    assert outcome.reason == run.error


def test_a_body_returning_no_dict_fails_the_run():
    outcome = job_run("t_not_dict", now=NOW)

    assert outcome.outcome == Outcome.FAILED
    assert "must return a dict" in JobRun.objects.get(job="t_not_dict").error


def test_an_unknown_job_raises():
    with pytest.raises(UnknownJob):
        job_run("no_such_job", now=NOW)


# --- the lock -----------------------------------------------------------------------------------


def test_a_held_lock_skips_the_run_and_is_left_alone():
    lock = JobLockFactory(
        name="t_ok", owner="worker-7:42:abc", locked_until=NOW + timedelta(minutes=20)
    )
    before = _sample("backend_job_runs_total", job="t_ok", outcome=Outcome.SKIPPED_LOCKED)

    outcome = job_run("t_ok", now=NOW)

    assert outcome.outcome == Outcome.SKIPPED_LOCKED
    assert "worker-7:42:abc" in outcome.reason
    assert not JobRun.objects.filter(job="t_ok").exists()
    assert CALLS == []
    lock.refresh_from_db()
    assert lock.owner == "worker-7:42:abc"
    assert _sample("backend_job_runs_total", job="t_ok", outcome="skipped_locked") == before + 1


def test_an_expired_lock_is_taken_over():
    JobLockFactory(
        name="t_ok",
        owner="dead-host:1:gone",
        acquired_at=NOW - timedelta(hours=1),
        locked_until=NOW - timedelta(seconds=1),
    )

    outcome = job_run("t_ok", now=NOW)

    assert outcome.outcome == Outcome.SUCCEEDED
    assert not JobLock.objects.filter(name="t_ok").exists()


def test_the_lock_is_held_with_owner_and_ttl_while_the_body_runs():
    job_run("t_spy", now=NOW, task_id="task-123")

    lock = SEEN["lock"]
    host, pid, task = lock.owner.split(":")
    assert host
    assert int(pid) > 0
    assert task == "task-123"
    assert lock.acquired_at == NOW
    assert lock.locked_until == NOW + timedelta(seconds=55 + 60)
    assert not JobLock.objects.filter(name="t_spy").exists()


def test_the_lock_is_released_only_if_still_ours():
    outcome = job_run("t_steal", now=NOW)

    assert outcome.outcome == Outcome.SUCCEEDED
    assert JobLock.objects.get(name="t_steal").owner == "other-host:1:thief"


def test_lock_owners_are_distinct_without_a_task_id():
    assert job_runs.lock_owner() != job_runs.lock_owner()
    assert job_runs.lock_owner("abc").endswith(":abc")
    assert len(job_runs.lock_owner("t" * 200)) == 100


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_runs_one_runs_and_the_other_is_locked_out():
    """The second `run_job` exits with code 3 while the first holds the lock."""
    results = {}

    def first():
        try:
            results["first"] = job_run("t_block")
        finally:
            from django.db import connection

            connection.close()

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert GATE["entered"].wait(20), "the first run never started"
        assert JobLock.objects.filter(name="t_block").exists()

        second = job_run("t_block")
        with pytest.raises(CommandError) as error:
            call_command("run_job", "t_block", stdout=StringIO())
    finally:
        GATE["release"].set()
        thread.join(20)

    assert second.outcome == Outcome.SKIPPED_LOCKED
    assert error.value.returncode == 3
    assert "lock held by" in str(error.value)
    assert results["first"].outcome == Outcome.SUCCEEDED
    assert JobRun.objects.filter(job="t_block").count() == 1
    assert not JobLock.objects.filter(name="t_block").exists()


# --- metrics ------------------------------------------------------------------------------------


def test_metrics_count_outcomes_duration_and_last_success():
    succeeded = _runs("t_ok")
    skipped = _sample("backend_job_runs_total", job="t_ok", outcome=Outcome.SKIPPED_PERIOD)
    durations = _sample("backend_job_duration_seconds_count", job="t_ok")
    started = time.time()

    job_run("t_ok", now=NOW)
    job_run("t_ok", now=NOW)

    assert _runs("t_ok") == succeeded + 1
    assert _sample("backend_job_runs_total", job="t_ok", outcome="skipped_period") == skipped + 1
    assert _sample("backend_job_duration_seconds_count", job="t_ok") == durations + 1
    last = _sample("backend_job_last_success_timestamp_seconds", job="t_ok")
    assert started - 1 <= last <= time.time() + 1


# --- the Celery task ----------------------------------------------------------------------------


def test_the_refill_task_runs_through_the_runner(monkeypatch):
    monkeypatch.setitem(JOBS, "refill_stock", replace(JOBS["refill_stock"], body=ok_body))

    result = app.tasks["exercises.refill_stock"].apply(
        kwargs={"force": True, "from_a_newer_release": 1}, task_id="celery-task-1"
    )

    assert result.successful(), result.traceback
    outcome = result.get()
    assert outcome["outcome"] == "succeeded"
    assert outcome["forced"] is True
    assert outcome["stats"]["done"] == 1
    run = JobRun.objects.get(job="refill_stock")
    assert run.forced
    assert run.status == JobRunStatus.SUCCEEDED


# --- run_job ------------------------------------------------------------------------------------


def test_run_job_list_prints_names_tasks_and_schedules():
    out = StringIO()

    call_command("run_job", "--list", stdout=out)

    lines = out.getvalue().splitlines()
    refill = next(line for line in lines if line.startswith("refill_stock "))
    assert "exercises.refill_stock" in refill
    assert "every 600 s (EXERCISE_REFILL_INTERVAL)" in refill
    assert len(lines) == len(JOBS)


def test_run_job_list_verbose_shows_limits():
    out = StringIO()

    call_command("run_job", "--list", verbosity=2, stdout=out)

    assert "limits 1500/1800 s, lock 1860 s" in out.getvalue()


@pytest.mark.parametrize("args", [["no_such_job"], [], ["t_ok", "--list"]])
def test_run_job_usage_errors_exit_2(args):
    with pytest.raises(CommandError) as error:
        call_command("run_job", *args, stdout=StringIO())

    assert error.value.returncode == 2
    assert not JobRun.objects.exists()


def test_run_job_unknown_name_lists_the_jobs():
    with pytest.raises(CommandError, match=r"unknown job 'nope'; jobs: .*refill_stock"):
        call_command("run_job", "nope", stdout=StringIO())


def test_run_job_exit_code_2_from_the_shell():
    result = subprocess.run(
        [sys.executable, "manage.py", "run_job", "no_such_job"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "duoniche.settings_test"},
        check=False,
    )

    assert result.returncode == 2, result.stderr
    assert "unknown job 'no_such_job'" in result.stderr


def test_run_job_prints_a_summary_and_the_stats():
    out = StringIO()

    call_command("run_job", "t_ok", stdout=out)

    summary, stats = out.getvalue().splitlines()
    assert summary.startswith("t_ok succeeded: period ")
    assert '"done": 1' in stats
    assert JobRun.objects.get(job="t_ok").status == JobRunStatus.SUCCEEDED


def test_run_job_verbosity_0_prints_nothing_and_2_indents():
    quiet, loud = StringIO(), StringIO()

    call_command("run_job", "t_ok", verbosity=0, stdout=quiet)
    call_command("run_job", "t_ok", "--force", verbosity=2, stdout=loud)

    assert quiet.getvalue() == ""
    assert loud.getvalue().splitlines()[0].startswith("t_ok succeeded (forced): period")
    assert '\n  "done": 1' in loud.getvalue()


def test_run_job_skipped_period_exits_0_with_the_reason():
    call_command("run_job", "t_ok", stdout=StringIO())
    out = StringIO()

    call_command("run_job", "t_ok", stdout=out)

    assert out.getvalue().startswith("t_ok skipped_period: period ")
    assert "already succeeded" in out.getvalue()


def test_run_job_failure_exits_1():
    with pytest.raises(CommandError) as error:
        call_command("run_job", "t_fail_once", stdout=StringIO())

    assert error.value.returncode == 1
    assert "RuntimeError: the provider fell over" in str(error.value)
    assert JobRun.objects.get(job="t_fail_once").status == JobRunStatus.FAILED


def test_run_job_lock_held_exits_3():
    JobLockFactory(name="t_ok", locked_until=timezone.now() + timedelta(minutes=5))

    with pytest.raises(CommandError) as error:
        call_command("run_job", "t_ok", stdout=StringIO())

    assert error.value.returncode == 3
    assert CALLS == []


def test_run_job_dry_run_writes_nothing():
    out = StringIO()

    call_command("run_job", "t_ok", "--dry-run", stdout=out)

    summary, stats = out.getvalue().splitlines()
    assert summary.startswith("t_ok succeeded (dry run): period ")
    assert '"dry_run": true' in stats
    assert CALLS[0]["dry_run"] is True
    assert not JobRun.objects.exists()
    assert not JobLock.objects.exists()


def test_a_dry_run_ignores_the_period_guard_and_the_lock():
    job_run("t_ok", now=NOW)
    JobLockFactory(name="t_ok", locked_until=NOW + timedelta(minutes=5))

    outcome = job_run("t_ok", now=NOW, dry_run=True)

    assert outcome.outcome == Outcome.SUCCEEDED
    assert outcome.dry_run
    assert JobRun.objects.filter(job="t_ok").count() == 1
