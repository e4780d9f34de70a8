"""The `metrics_updater` job (docs/jobs.md): each ended session is observed once,
and the active users are published for the web's `/metrics` through the cache.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client import REGISTRY

from duoniche.job_runs import Outcome, job_run
from duoniche.metrics_collector import ACTIVE_USERS, cached_gauge_samples
from learning.metrics_updater import metrics_updater
from learning.models import BotProfile
from tests.learning.factories import BotProfileFactory, TelegramUserFactory

pytestmark = pytest.mark.django_db

LABELS = {
    "cohort": "spring",
    "plan": "",
    "target_language": "Bulgarian",
    "user_language": "en",
    "language_level": "A2",
}
KEY = tuple(LABELS.values())


def sample(name: str, labels: dict[str, str] = LABELS) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def profile(
    now: datetime,
    *,
    idle_seconds: int,
    length_seconds: int = 600,
    exercises: int = 7,
    frozen: bool = False,
    cohort: str | None = "spring",
) -> BotProfile:
    last = now - timedelta(seconds=idle_seconds)
    return BotProfileFactory(
        user=TelegramUserFactory(cohort=cohort, plan=None),
        last_exercise_at=last,
        session_started_at=last - timedelta(seconds=length_seconds),
        session_frozen_until=now + timedelta(hours=1) if frozen else None,
        exercises_get_in_session=exercises,
    )


def test_a_frozen_session_is_observed_once_over_three_runs_a_minute_apart():
    now = timezone.now()
    profile(now, idle_seconds=5, length_seconds=600, exercises=7, frozen=True)
    count = sample("backend_user_session_length_seconds_count")
    total = sample("backend_user_session_length_seconds_sum")
    per_session = sample("backend_exercises_per_session_count")
    per_session_sum = sample("backend_exercises_per_session_sum")

    observed = [
        metrics_updater(now=now + timedelta(minutes=minute), dry_run=False)["observed_sessions"]
        for minute in range(3)
    ]

    assert observed == [1, 0, 0]
    assert sample("backend_user_session_length_seconds_count") == count + 1
    assert sample("backend_user_session_length_seconds_sum") == total + 600
    assert sample("backend_exercises_per_session_count") == per_session + 1
    assert sample("backend_exercises_per_session_sum") == per_session_sum + 7


def test_three_real_runs_of_the_job_observe_once():
    now = timezone.now()
    profile(now, idle_seconds=310)  # idle for more than 300 s: ended
    count = sample("backend_user_session_length_seconds_count")

    outcomes = [job_run("metrics_updater", now=now + timedelta(minutes=m)) for m in range(3)]

    assert [o.outcome for o in outcomes] == [Outcome.SUCCEEDED] * 3
    assert [o.stats["observed_sessions"] for o in outcomes] == [1, 0, 0]
    assert sample("backend_user_session_length_seconds_count") == count + 1


def test_a_new_session_of_the_same_profile_is_observed_again():
    now = timezone.now()
    learner = profile(now, idle_seconds=5, frozen=True)
    count = sample("backend_exercises_per_session_count")
    metrics_updater(now=now, dry_run=False)

    later = now + timedelta(hours=4)
    BotProfile.objects.filter(pk=learner.pk).update(
        session_started_at=later - timedelta(minutes=20),
        last_exercise_at=later - timedelta(seconds=5),
    )
    metrics_updater(now=later, dry_run=False)

    assert sample("backend_exercises_per_session_count") == count + 2


def test_the_session_ttl_boundary_and_the_window():
    now = timezone.now()
    profile(now, idle_seconds=300)  # exactly 300 s: still active
    profile(now, idle_seconds=301, cohort="ended")
    profile(now, idle_seconds=361, cohort="gone")  # outside 300 + 60 s: not read at all

    stats = metrics_updater(now=now, dry_run=False)

    assert (stats["active_users"], stats["ended_sessions"], stats["observed_sessions"]) == (1, 1, 1)
    assert cached_gauge_samples(ACTIVE_USERS) == {KEY: 1.0}


def test_a_session_ending_before_it_started_observes_only_the_exercise_count():
    now = timezone.now()
    profile(now, idle_seconds=5, length_seconds=-30, frozen=True)
    lengths = sample("backend_user_session_length_seconds_count")
    counts = sample("backend_exercises_per_session_count")

    metrics_updater(now=now, dry_run=False)

    assert sample("backend_user_session_length_seconds_count") == lengths
    assert sample("backend_exercises_per_session_count") == counts + 1


# --- the active-users gauge ----------------------------------------------------------------------


def test_active_users_are_counted_per_label_tuple_and_exported_at_metrics(client):
    now = timezone.now()
    for _ in range(2):
        profile(now, idle_seconds=30)
    BotProfileFactory(
        user=TelegramUserFactory(cohort=None, plan="stars"),
        bot_id="Serbian",
        user_language="ru",
        language_level="B1",
        last_exercise_at=now - timedelta(seconds=10),
        session_started_at=now - timedelta(minutes=3),
    )

    stats = metrics_updater(now=now, dry_run=False)

    assert stats["active_users"] == 3
    serbian = {
        "cohort": "",
        "plan": "stars",
        "target_language": "Serbian",
        "user_language": "ru",
        "language_level": "B1",
    }
    assert sample(ACTIVE_USERS) == 2
    assert sample(ACTIVE_USERS, serbian) == 1
    body = client.get("/metrics").content.decode()
    assert (
        'backend_active_users_total{cohort="spring",language_level="A2",plan="",'
        'target_language="Bulgarian",user_language="en"} 2.0'
    ) in body
    assert body.count("# TYPE backend_active_users_total gauge") == 1


def test_a_tuple_no_longer_active_is_exported_as_zero():
    now = timezone.now()
    learner = profile(now, idle_seconds=30)
    metrics_updater(now=now, dry_run=False)
    assert sample(ACTIVE_USERS) == 1

    BotProfile.objects.filter(pk=learner.pk).update(session_frozen_until=now + timedelta(hours=1))
    metrics_updater(now=now + timedelta(minutes=1), dry_run=False)

    assert cached_gauge_samples(ACTIVE_USERS) == {KEY: 0.0}
    assert REGISTRY.get_sample_value(ACTIVE_USERS, LABELS) == 0.0


def test_a_dry_run_reports_without_observing_or_publishing():
    now = timezone.now()
    profile(now, idle_seconds=5, frozen=True)
    profile(now, idle_seconds=5, cohort="active")
    count = sample("backend_user_session_length_seconds_count")

    stats = metrics_updater(now=now, dry_run=True)

    assert (stats["active_users"], stats["ended_sessions"], stats["observed_sessions"]) == (1, 1, 0)
    assert sample("backend_user_session_length_seconds_count") == count
    assert cached_gauge_samples(ACTIVE_USERS) is None
    assert metrics_updater(now=now, dry_run=False)["observed_sessions"] == 1


def test_it_reads_with_one_query_and_writes_nothing():
    now = timezone.now()
    for seconds in (5, 30, 400):
        profile(now, idle_seconds=seconds, frozen=seconds == 5)

    with CaptureQueriesContext(connection) as queries:
        metrics_updater(now=now, dry_run=False)

    assert len(queries) == 1
    assert queries[0]["sql"].startswith("SELECT")
