"""A real Celery worker for the job tests: a `celery -A duoniche worker` subprocess on this test's
Redis database and PostgreSQL test database, and a helper that runs one job through it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.db import connection

from duoniche.celery import app
from duoniche.enums import JobRunStatus
from duoniche.models import JobLock, JobRun

ROOT = Path(__file__).resolve().parents[1]
WAIT_SECONDS = 60


def current_database_url() -> str:
    """The URL of the database this test uses (pytest-django's `test_...` database)."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = db["HOST"] or "127.0.0.1"
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{credentials}@{host}{port}/{db['NAME']}"


def worker_env(**extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "duoniche.settings_test",
        # settings_test derives DATABASE_URL from TEST_DATABASE_URL: this test's database.
        "TEST_DATABASE_URL": current_database_url(),
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
    # prometheus_client switches to multiprocess files by the variable's presence, even empty:
    # only a test that asks for a directory gets one.
    if "PROMETHEUS_MULTIPROC_DIR" not in extra:
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.pop("prometheus_multiproc_dir", None)
    return env


@contextmanager
def running_worker(tmp_path: Path, *, queue: str | None = None, **extra_env: str) -> Iterator[Any]:
    """A running worker consuming `queue` (default: ours); yields a function returning
    `(process, log so far)`. The worker is stopped on exit."""
    assert settings.CELERY_BROKER_URL, "the worker tests need Redis (REDIS_URL)"
    log_path = tmp_path / f"worker-{uuid.uuid4().hex[:6]}.log"
    command = [
        str(Path(sys.executable).with_name("celery")),
        *("-A", "duoniche", "worker", "-Q", queue or settings.CELERY_TASK_DEFAULT_QUEUE),
        *("--pool", "solo", "--concurrency", "1"),
        *("--without-gossip", "--without-mingle", "--without-heartbeat"),
        *("--loglevel", "INFO", "-n", f"test-{uuid.uuid4().hex[:8]}@%h"),
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=worker_env(**extra_env), stdout=log, stderr=subprocess.STDOUT
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


def run_in_worker(
    tmp_path: Path,
    job: str,
    task: str,
    *,
    while_running: Callable[[], None] | None = None,
    **extra_env: str,
) -> tuple[JobRun, str]:
    """Send `task` by name, as beat does, to a fresh worker; wait (bounded) for the job's
    finished run and check that it succeeded and released its lock. `while_running` is called
    after the run, before the worker stops."""
    with running_worker(tmp_path, **extra_env) as state:
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
        if run is not None and while_running is not None:
            while_running()
        output = state()[1]
    assert run is not None, f"no finished {job} run within {WAIT_SECONDS} s:\n{output}"
    assert run.status == JobRunStatus.SUCCEEDED, f"{run.error}\n{output}"
    assert not JobLock.objects.filter(name=job).exists()
    assert task in output
    return run, output
