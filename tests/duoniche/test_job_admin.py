"""Staff run a job now from the admin (queued for a worker, never run in the request), and old
job runs are pruned by a job of their own."""

from __future__ import annotations

import json
import socket
import time
from datetime import timedelta

import pytest
import redis
from celery import current_app
from django.conf import settings
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from duoniche.enums import JobRunStatus
from duoniche.job_runs import Outcome, job_run
from duoniche.jobs import JOBS, lazy_body
from duoniche.models import JobRun
from tests.duoniche.factories import JobRunFactory

pytestmark = pytest.mark.django_db


def run_now(client, name):
    return client.post(reverse("admin:duoniche_jobrun_run_now", args=[name]), follow=True)


def messages_of(response):
    return [(m.level_tag, str(m.message)) for m in response.context["messages"]]


@pytest.fixture
def broker(monkeypatch):
    """The real Redis broker, with the app publishing to it (the suite runs tasks eagerly)."""
    # Keys of the Django namespace win over the plain ones (duoniche/celery.py `_override`).
    monkeypatch.setitem(current_app.conf, "CELERY_TASK_ALWAYS_EAGER", False)
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete(settings.CELERY_TASK_DEFAULT_QUEUE)
    yield client
    client.delete(settings.CELERY_TASK_DEFAULT_QUEUE)


def test_run_now_queues_a_forced_run_for_a_worker(admin_client, broker):
    response = run_now(admin_client, "refill_stock")

    assert response.status_code == 200
    [(level, text)] = messages_of(response)
    assert level == "success", text
    assert "refill_stock is queued as a forced run" in text
    assert response.request["QUERY_STRING"] == "job__exact=refill_stock&forced__exact=1"
    [raw] = [json.loads(item) for item in broker.lrange(settings.CELERY_TASK_DEFAULT_QUEUE, 0, -1)]
    assert raw["headers"]["task"] == "exercises.refill_stock"
    assert "'force': True" in raw["headers"]["kwargsrepr"]
    assert not JobRun.objects.exists()  # nothing ran in the request


def test_without_a_broker_run_now_names_the_command_instead(admin_client):
    assert current_app.conf.task_always_eager  # the suite's (and make run's) setting

    response = run_now(admin_client, "refill_stock")

    [(level, text)] = messages_of(response)
    assert level == "error"
    assert "manage.py run_job refill_stock --force" in text
    assert not JobRun.objects.exists()


def test_an_unknown_job_is_an_error_message(admin_client):
    [(level, text)] = messages_of(run_now(admin_client, "no_such_job"))

    assert (level, text) == ("error", "There is no job called no_such_job.")


def test_run_now_takes_a_post_from_someone_allowed(admin_client, client):
    url = reverse("admin:duoniche_jobrun_run_now", args=["refill_stock"])
    viewer = User.objects.create_user("viewer", password="x", is_staff=True)
    client.force_login(viewer)

    assert admin_client.get(url).status_code == 405
    assert client.post(url).status_code == 403


def test_the_job_runs_page_offers_every_registered_job(admin_client):
    page = admin_client.get(reverse("admin:duoniche_jobrun_changelist")).content.decode()

    for name in JOBS:
        assert reverse("admin:duoniche_jobrun_run_now", args=[name]) in page


# --- pruning ------------------------------------------------------------------------------------


def test_prune_is_a_registered_weekly_job():
    job = JOBS["job_runs_prune"]

    assert job.body == lazy_body("duoniche.job_runs.job_runs_prune")
    assert job.task == "duoniche.job_runs_prune"
    assert job.cron == {"minute": "30", "hour": "3", "day_of_week": "mon"}


def test_prune_deletes_finished_runs_older_than_the_retention(settings):
    settings.JOB_RUN_RETENTION_DAYS = 30
    now = timezone.now()
    cutoff = now - timedelta(days=30)
    old = JobRunFactory(status=JobRunStatus.SUCCEEDED, started_at=cutoff - timedelta(seconds=1))
    old_failed = JobRunFactory(status=JobRunStatus.FAILED, started_at=cutoff - timedelta(days=9))
    at_cutoff = JobRunFactory(status=JobRunStatus.SUCCEEDED, started_at=cutoff)
    old_running = JobRunFactory(status=JobRunStatus.RUNNING, started_at=cutoff - timedelta(days=1))
    recent = JobRunFactory(status=JobRunStatus.SUCCEEDED, started_at=now - timedelta(days=1))

    dry = job_run("job_runs_prune", now=now, dry_run=True)
    outcome = job_run("job_runs_prune", now=now, force=True)

    assert dry.stats["would_delete"] == 2
    assert outcome.outcome == Outcome.SUCCEEDED
    assert outcome.stats["deleted"] == 2
    left = set(JobRun.objects.exclude(job="job_runs_prune").values_list("pk", flat=True))
    assert left == {at_cutoff.pk, old_running.pk, recent.pk}
    assert not JobRun.objects.filter(pk__in=[old.pk, old_failed.pk]).exists()


@pytest.fixture
def silent_broker():
    """A TCP port that accepts connections and never answers: a hung Redis."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    finally:
        listener.close()


@pytest.fixture
def broker_at(monkeypatch):
    """Point the app's publishing at another broker URL (fresh connection pools)."""

    def point(url: str) -> None:
        monkeypatch.setitem(current_app.conf, "CELERY_TASK_ALWAYS_EAGER", False)
        monkeypatch.setitem(current_app.conf, "CELERY_BROKER_URL", url)
        monkeypatch.setattr(current_app, "_pool", None)
        monkeypatch.setattr(current_app.amqp, "_producer_pool", None)

    return point


@pytest.mark.parametrize("outage", ["refused", "silent"])
def test_run_now_with_the_broker_down_says_so_quickly(admin_client, broker_at, outage, request):
    url = (
        "redis://127.0.0.1:1/0" if outage == "refused" else request.getfixturevalue("silent_broker")
    )
    broker_at(url)
    started = time.monotonic()

    response = run_now(admin_client, "refill_stock")

    elapsed = time.monotonic() - started
    assert response.status_code == 200
    [(level, text)] = messages_of(response)
    assert level == "error"
    assert "refill_stock was not queued" in text
    assert "the broker did not take it" in text
    assert not JobRun.objects.exists()
    # Bounded by the broker timeouts (docs/configuration.md), never a hung admin request.
    assert elapsed < 4 * settings.CELERY_BROKER_SOCKET_TIMEOUT + 2, elapsed
