"""A real Celery worker runs a periodic job end to end: broker (Redis), task routing, the runner's
lock and period guard, and the `JobRun` it leaves (jobs.md §1–2).

The worker is `celery -A duoniche worker -Q duoniche --pool solo` in a subprocess, on this test's
Redis database and PostgreSQL test database; the test sends `exercises.refill_stock` by name, as
beat does, and waits (bounded) for the run to finish. No LLM is configured for the worker, so the
refill generates nothing and says why.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from duoniche.celery import app
from duoniche.enums import JobRunStatus
from duoniche.models import JobLock, JobRun

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
WAIT_SECONDS = 45


def _test_database_url() -> str:
    """The URL of the database this test uses (pytest-django's `test_...` database)."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = db["HOST"] or "127.0.0.1"
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{credentials}@{host}{port}/{db['NAME']}"


def _worker_env() -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "duoniche.settings_test",
        # settings_test derives DATABASE_URL from TEST_DATABASE_URL: this test's database.
        "TEST_DATABASE_URL": _test_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "OPENAI_API_KEY": "",
        "OPENAI_BASE_URL": "",
        "GENERATE_AUDIO": "false",
        "DATABASE_CONN_MAX_AGE": "0",
        "SENTRY_DSN": "",
    }
    # prometheus_client switches to multiprocess files by the variable's presence, even empty.
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.pop("prometheus_multiproc_dir", None)
    return env


@pytest.mark.filterwarnings("ignore::celery.exceptions.AlwaysEagerIgnored")  # send_task: a message
def test_a_real_worker_runs_refill_stock_from_the_broker(tmp_path):
    assert settings.CELERY_BROKER_URL, "the worker test needs Redis (REDIS_URL)"
    log_path = tmp_path / "worker.log"
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
        f"jobs-test-{uuid.uuid4().hex[:8]}@%h",
    ]
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            command, cwd=ROOT, env=_worker_env(), stdout=log, stderr=subprocess.STDOUT
        )
    try:
        app.send_task("exercises.refill_stock", kwargs={"sent_by": "test"})

        run = None
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline and worker.poll() is None:
            run = JobRun.objects.filter(
                job="refill_stock", status__in=[JobRunStatus.SUCCEEDED, JobRunStatus.FAILED]
            ).first()
            if run is not None:
                break
            time.sleep(0.2)
    finally:
        worker.terminate()
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(10)
    output = log_path.read_text(errors="replace")

    assert run is not None, f"no finished refill_stock run within {WAIT_SECONDS} s:\n{output}"
    assert run.status == JobRunStatus.SUCCEEDED, f"{run.error}\n{output}"
    assert run.forced is False
    assert run.attempts == 1
    assert run.stats["generation_disabled"] == "exercise generation disabled: no LLM configured"
    assert run.stats["totals"]["generated"] == 0
    assert run.stats["stock"]["Bulgarian"]["fill_in_the_blank"]["deficit"] == 5
    assert not JobLock.objects.filter(name="refill_stock").exists()
    assert "exercises.refill_stock" in output
    assert JobRun.objects.filter(job="refill_stock").count() == 1
