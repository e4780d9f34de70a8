"""Metrics that add up across processes (issue 13 items 1 and 2).

One directory is shared, as the compose file shares one volume: a real Celery worker runs a job
and records its metrics there; the worker's own exporter (WORKER_METRICS_PORT, for worker-only
hosts) serves them, and the web's `/metrics`, in another process reading the same directory,
shows them next to its own requests. Sample files are named after host and process, so containers
that number their processes alike never share a file.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from tests.celery_worker import run_in_worker

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
JOB_SUCCESS = 'backend_job_runs_total{job="refill_stock",outcome="succeeded"} 1.0'


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def web_scrape(directory: Path) -> str:
    """Two requests and a scrape of /metrics in a fresh process writing to `directory`."""
    script = textwrap.dedent(
        """
        import django
        django.setup()
        from django.test import Client
        Client(HTTP_HOST="localhost").get("/no-such-path")
        print(Client(HTTP_HOST="localhost").get("/metrics").content.decode())
        """
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "duoniche.settings_test",
        "PROMETHEUS_MULTIPROC_DIR": str(directory),
        "METRICS_TOKEN": "",
    }
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.filterwarnings("ignore::celery.exceptions.AlwaysEagerIgnored")  # send_task: a message
def test_job_metrics_from_a_worker_reach_the_web_scrape_and_the_worker_exporter(tmp_path):
    shared = tmp_path / "metrics"
    shared.mkdir()
    port = free_port()
    seen_by_exporter: list[str] = []

    def exporter_scrape() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    seen_by_exporter.append(r.read().decode())
                    return
            except OSError:
                time.sleep(0.2)

    run_in_worker(
        tmp_path,
        "refill_stock",
        "exercises.refill_stock",
        PROMETHEUS_MULTIPROC_DIR=str(shared),
        WORKER_METRICS_PORT=str(port),
        while_running=exporter_scrape,
    )

    assert seen_by_exporter, "the worker exporter never answered"
    assert JOB_SUCCESS in seen_by_exporter[0]
    web = web_scrape(shared)
    assert JOB_SUCCESS in web  # recorded by the worker process, read by the web process
    assert 'http_requests_total{handler="none",method="GET",status="4xx"} 1.0' in web
    host = socket.gethostname().replace("_", "-")
    names = sorted(path.name for path in shared.iterdir())
    assert names
    assert all(f"_{host}-" in name for name in names), names
