"""`quality_monitor`, `review_processor` and `metrics_updater` end to end in a real Celery worker.

As in `test_celery_worker.py`: `celery -A duoniche worker -Q duoniche --pool solo` runs in a
subprocess on this test's Redis database and PostgreSQL test database; the test sends the task by
name, as beat does, and waits (bounded) for the run's `JobRun`. The review processor's worker talks
to a loopback fake OpenAI-compatible server started by the test. The metrics updater's active users
are then read at this process's `/metrics`: a value computed in the worker, exported by the web.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from duoniche.celery import app
from duoniche.enums import ExerciseStatus, JobRunStatus, ReviewSource
from duoniche.models import JobLock, JobRun, LLMCall
from exercises.models import Exercise, ExerciseReview
from exercises.services import exercise_change_status
from learning.models import BotProfile
from tests.exercises.factories import ExerciseAnswerFactory, ExerciseFactory
from tests.fakes.openai_server import FAKE_API_KEY, FAKE_MODEL, FakeOpenAIServer
from tests.learning.factories import (
    BotProfileFactory,
    ExerciseAttemptFactory,
    TelegramUserFactory,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore::celery.exceptions.AlwaysEagerIgnored"),
]

ROOT = Path(__file__).resolve().parents[2]
WAIT_SECONDS = 60


def _test_database_url() -> str:
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = db["HOST"] or "127.0.0.1"
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{credentials}@{host}{port}/{db['NAME']}"


def _worker_env(extra: dict[str, str]) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "duoniche.settings_test",
        "TEST_DATABASE_URL": _test_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "OPENAI_API_KEY": "",
        "OPENAI_BASE_URL": "",
        "GENERATE_AUDIO": "false",
        "DATABASE_CONN_MAX_AGE": "0",
        "SENTRY_DSN": "",
        **extra,
    }
    # prometheus_client switches to multiprocess files by the variable's presence, even empty.
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.pop("prometheus_multiproc_dir", None)
    return env


@contextmanager
def worker(tmp_path: Path, **extra_env: str) -> Iterator[Any]:
    """A running worker; yields a function that returns its log so far."""
    assert settings.CELERY_BROKER_URL, "the worker test needs Redis (REDIS_URL)"
    log_path = tmp_path / f"worker-{uuid.uuid4().hex[:6]}.log"
    command = [
        str(Path(sys.executable).with_name("celery")),
        "-A",
        "duoniche",
        "worker",
        "-Q",
        settings.CELERY_TASK_DEFAULT_QUEUE,
        "--pool",
        "solo",
        "--concurrency",
        "1",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "--loglevel",
        "INFO",
        "-n",
        f"quality-test-{uuid.uuid4().hex[:8]}@%h",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=_worker_env(extra_env), stdout=log, stderr=subprocess.STDOUT
        )
    try:
        yield lambda: (process, log_path.read_text(errors="replace"))
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def run_in_worker(tmp_path: Path, job: str, task: str, **extra_env: str) -> tuple[JobRun, str]:
    """Send `task` to a fresh worker and wait for the job's finished run."""
    with worker(tmp_path, **extra_env) as state:
        app.send_task(task, kwargs={"sent_by": "test"})
        run = None
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline and state()[0].poll() is None:
            run = JobRun.objects.filter(
                job=job, status__in=[JobRunStatus.SUCCEEDED, JobRunStatus.FAILED]
            ).first()
            if run is not None:
                break
            time.sleep(0.2)
        output = state()[1]
    assert run is not None, f"no finished {job} run within {WAIT_SECONDS} s:\n{output}"
    assert run.status == JobRunStatus.SUCCEEDED, f"{run.error}\n{output}"
    assert not JobLock.objects.filter(name=job).exists()
    assert task in output
    return run, output


def test_a_real_worker_runs_the_quality_monitor(tmp_path):
    exercise = ExerciseFactory()
    Exercise.objects.filter(pk=exercise.pk).update(
        status_changed_at=timezone.now() - timedelta(days=2)
    )
    wrong = ExerciseAnswerFactory(exercise=exercise)
    learners = [TelegramUserFactory() for _ in range(2)]
    for user in learners:
        BotProfileFactory(user=user, bot_id="Bulgarian")
    # One learner, 3 days and 8 attempts (all wrong here), the other 1 attempt: ranges > 0.
    for day in range(3):
        ExerciseAttemptFactory.create_batch(
            3 if day < 2 else 2,
            user=learners[0],
            exercise=exercise,
            verdict=wrong,
            is_correct=False,
            created_at=timezone.now() - timedelta(days=day, minutes=5),
        )
    ExerciseAttemptFactory(user=learners[1], exercise=exercise, is_correct=True)

    run, _ = run_in_worker(
        tmp_path, "quality_monitor", "learning.quality_monitor", QUALITY_MIN_WEIGHTED_ATTEMPTS="2.0"
    )

    assert run.stats["rating_groups"] == 2
    assert run.stats["profiles_rated"] == 2
    ratings = dict(BotProfile.objects.values_list("user_id", "rating"))
    # learners[0]: max days and attempts, nothing correct: 0.4 + 0.3 = 0.7; learners[1]: 0.3.
    assert ratings == {learners[0].pk: 0.7, learners[1].pk: 0.3}
    assert run.stats["flagged"] == [exercise.pk]
    exercise.refresh_from_db()
    assert exercise.status == ExerciseStatus.PENDING_REVIEW
    assert ExerciseReview.objects.filter(
        exercise=exercise, source=ReviewSource.QUALITY_MONITOR
    ).exists()


def test_a_real_worker_runs_the_review_processor_against_a_fake_llm(tmp_path):
    exercise = ExerciseFactory()
    exercise_change_status(
        exercise_id=exercise.pk,
        new_status=ExerciseStatus.PENDING_REVIEW,
        source=ReviewSource.QUALITY_MONITOR,
        now=timezone.now(),
        expected_status=ExerciseStatus.PUBLISHED,
    )
    server = FakeOpenAIServer().start()
    server.script(
        {
            "is_exercise_flawed": True,
            "is_complex_but_correct": False,
            "primary_reason_for_user_errors": "Two answers are correct.",
            "suggested_action": "ARCHIVE",
            "suggested_revision": None,
        }
    )
    try:
        run, _ = run_in_worker(
            tmp_path,
            "review_processor",
            "exercises.review_processor",
            OPENAI_BASE_URL=server.url,
            OPENAI_API_KEY=FAKE_API_KEY,
            OPENAI_MAIN_MODEL_NAME=FAKE_MODEL,
            OPENAI_MAX_RETRIES="0",
            OPENAI_REQUEST_TIMEOUT="10",
        )
    finally:
        server.stop()

    assert run.stats["reviewed"] == 1
    assert run.stats["decisions"] == {"archived": 1}
    exercise.refresh_from_db()
    assert exercise.status == ExerciseStatus.ARCHIVED
    assert "conclusion: Two answers are correct." in exercise.comments
    review = ExerciseReview.objects.get(exercise=exercise, source=ReviewSource.REVIEW_PROCESSOR)
    assert review.analysis["suggested_action"] == "ARCHIVE"
    call = LLMCall.objects.get()
    assert (call.operation, call.ok, call.model) == ("assess_pending_exercise", True, FAKE_MODEL)
    assert len(server.requests) == 1


def test_a_real_worker_runs_the_metrics_updater_and_the_web_exports_its_gauge(tmp_path, client):
    now = timezone.now()
    BotProfileFactory(
        user=TelegramUserFactory(cohort="worker-test", plan=None),
        last_exercise_at=now - timedelta(seconds=20),
        session_started_at=now - timedelta(minutes=10),
        exercises_get_in_session=4,
    )

    run, _ = run_in_worker(tmp_path, "metrics_updater", "learning.metrics_updater")

    assert run.stats["active_users"] == 1
    body = client.get("/metrics").content.decode()
    values = {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        if sample.name == "backend_active_users_total"
    }
    labels = {
        "cohort": "worker-test",
        "plan": "",
        "target_language": "Bulgarian",
        "user_language": "en",
        "language_level": "A2",
    }
    assert values == {tuple(sorted(labels.items())): 1.0}


def test_a_real_worker_runs_the_weekly_reports(tmp_path):
    from learning.models import WeeklyReport

    profile = BotProfileFactory()
    now = timezone.now()
    monday = (now - timedelta(days=now.weekday())).replace(hour=0, minute=0, second=0)
    last_week = monday - timedelta(days=7)
    for day in range(15):
        ExerciseAttemptFactory(
            user=profile.user, created_at=last_week + timedelta(hours=10 * day + 1)
        )
    quiet = BotProfileFactory()
    ExerciseAttemptFactory(user=quiet.user, created_at=last_week + timedelta(hours=1))

    run, _ = run_in_worker(tmp_path, "weekly_reports", "notifications.weekly_reports")

    report = WeeklyReport.objects.get()
    assert (report.user_id, report.bot_id) == (profile.user_id, "Bulgarian")
    assert report.week_start_date == last_week.date()
    assert "15" in report.short_report
    assert run.stats
