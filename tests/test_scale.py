"""Two copies of every process on one machine (issue 13 item 6), the small version of
`bench/scale.py`: two web processes behind nginx, two Celery workers, two beats, one PostgreSQL
and one Redis, eight learners for ten seconds with every job's interval at two seconds. The
script checks no duplicate job run per period, no notification published twice, no exercise
generated twice (a loopback LLM fake writes them), no 5xx, and `/metrics` totals equal to the
database's counts; it exits 1 when one fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from tests.celery_worker import current_database_url

ROOT = Path(__file__).resolve().parents[1]
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


@pytest.mark.skipif(NGINX is None, reason="needs nginx (apt-get install nginx-light)")
def test_two_of_every_process_share_the_work_without_duplicates():
    # The suite's PostgreSQL server, a database of the script's own (created and dropped by it).
    # Named per run: two suites on one machine must not reset each other's database.
    url = current_database_url().rsplit("/", 1)[0] + f"/duoniche_scale_test_{os.getpid()}"
    result = subprocess.run(
        [sys.executable, "bench/scale.py", "--learners", "8", "--seconds", "10",
         "--cycle-seconds", "2", "--database-url", url,
         "--redis-url", settings.REDIS_URL.rsplit("/", 1)[0] + "/14"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert '"no job ran twice in a period": true' in result.stdout
    assert '"/metrics attempts == database attempts": true' in result.stdout
    assert '"no exercise generated twice": true' in result.stdout
