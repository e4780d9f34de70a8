"""A real Celery worker runs a periodic job end to end: broker (Redis), task routing, the runner's
lock and period guard, and the `JobRun` it leaves (docs/jobs.md).

The worker is `celery -A duoniche worker -Q duoniche --pool solo` in a subprocess, on this test's
Redis database and PostgreSQL test database; the test sends `exercises.refill_stock` by name, as
beat does, and waits (bounded) for the run to finish. No LLM is configured for the worker, so the
refill generates nothing and says why.
"""

from __future__ import annotations

import pytest

from duoniche.models import JobRun
from tests.celery_worker import run_in_worker

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.filterwarnings("ignore::celery.exceptions.AlwaysEagerIgnored")  # send_task: a message
def test_a_real_worker_runs_refill_stock_from_the_broker(tmp_path):
    run, _ = run_in_worker(tmp_path, "refill_stock", "exercises.refill_stock")

    assert run.forced is False
    assert run.attempts == 1
    assert run.stats["generation_disabled"] == (
        "exercise generation disabled: no LLM configured "
        "(set OPENAI_API_KEY, or OPENAI_BASE_URL for a compatible server)"
    )
    assert run.stats["totals"]["generated"] == 0
    assert run.stats["stock"]["Bulgarian"]["fill_in_the_blank"]["deficit"] == 5
    assert JobRun.objects.filter(job="refill_stock").count() == 1
