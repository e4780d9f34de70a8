"""Business gauges at the web's `/metrics`, whatever process computed them (docs/jobs.md).

A gauge published through the cache by another process (here a separate Python process) is
exported by the web; the untouched stock is counted from the database at scrape time with one
grouped query; each name is exported once; a failing source drops only its own family.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import override_settings
from django.utils import timezone
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from duoniche import metrics
from duoniche.enums import ExerciseStatus, ExerciseType
from duoniche.jobs import JOBS
from duoniche.metrics_collector import (
    ACTIVE_USERS,
    JOB_INTERVAL,
    STOCK_TARGET,
    UNTOUCHED_EXERCISES,
    business_gauges,
    cached_gauge_publish,
    cached_gauge_samples,
)
from exercises.models import Exercise
from tests.exercises.factories import ExerciseFactory

ROOT = Path(__file__).resolve().parents[2]
FILL = ExerciseType.FILL_IN_THE_BLANK.value
CHOOSE = ExerciseType.CHOOSE_SENTENCE.value
ACCENT = ExerciseType.CHOOSE_ACCENT.value
LABELS = ("cohort-a", "", "Bulgarian", "en", "A2")


def scrape(client) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """`/metrics` parsed: family name → {sorted label pairs: value}."""
    response = client.get("/metrics")
    assert response.status_code == 200
    families: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            families.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = (
                sample.value
            )
    return families


def untouched(language: str, exercise_type: str) -> tuple[tuple[str, str], ...]:
    return (("exercise_language", language), ("exercise_type", exercise_type))


def _subprocess_env() -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "duoniche.settings_test",
        "REDIS_URL": settings.REDIS_URL,
    }
    # prometheus_client switches to multiprocess files by the variable's presence, even empty.
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.pop("prometheus_multiproc_dir", None)
    return env


@pytest.mark.django_db
def test_a_gauge_published_by_another_process_shows_at_the_web_metrics(client):
    script = textwrap.dedent(
        f"""
        import django
        django.setup()
        from django.utils import timezone
        from duoniche.metrics_collector import ACTIVE_USERS, cached_gauge_publish
        cached_gauge_publish(
            ACTIVE_USERS, {{{LABELS!r}: 4}}, now=timezone.now(), ttl_seconds=300
        )
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=_subprocess_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr

    families = scrape(client)

    labels = dict(zip(metrics.U, LABELS, strict=True))
    assert families[ACTIVE_USERS] == {tuple(sorted(labels.items())): 4.0}
    assert REGISTRY.get_sample_value(ACTIVE_USERS, labels) == 4.0


@pytest.mark.django_db
def test_the_untouched_stock_is_counted_at_scrape_time_per_language_and_type(client):
    ExerciseFactory.create_batch(2)  # Bulgarian fill, published, never attempted
    attempted = ExerciseFactory()
    Exercise.objects.filter(pk=attempted.pk).update(attempts_count=3)
    ExerciseFactory(status=ExerciseStatus.ARCHIVED)
    ExerciseFactory(
        exercise_language="Serbian",
        exercise_type=ExerciseType.CHOOSE_SENTENCE,
        data={"options": ["Idem kući.", "Idem kuća.", "Ide kući."]},
    )

    stock = scrape(client)[UNTOUCHED_EXERCISES]

    assert stock[untouched("Bulgarian", FILL)] == 2
    assert stock[untouched("Bulgarian", CHOOSE)] == 0
    assert stock[untouched("Bulgarian", ACCENT)] == 0
    assert stock[untouched("Serbian", CHOOSE)] == 1
    assert untouched("Serbian", ACCENT) not in stock  # Serbian has no accent exercises

    for n in range(3):  # no job ran: the next scrape sees the new stock
        ExerciseFactory(
            exercise_type=ExerciseType.CHOOSE_SENTENCE,
            data={"options": [f"Изречение {n}.", "Друго.", "Трето."]},
        )
    assert scrape(client)[UNTOUCHED_EXERCISES][untouched("Bulgarian", CHOOSE)] == 3


@pytest.mark.django_db
def test_the_stock_takes_one_grouped_query_and_the_cache_one_round_trip(
    django_assert_num_queries,
):
    ExerciseFactory.create_batch(2)

    with django_assert_num_queries(1) as captured:
        families = list(business_gauges.collect())

    assert "GROUP BY" in captured.captured_queries[0]["sql"]
    # Nothing cached yet; the two settings the alert rules compare with come from memory.
    assert [family.name for family in families] == [STOCK_TARGET, JOB_INTERVAL, UNTOUCHED_EXERCISES]


@pytest.mark.django_db
def test_each_business_gauge_is_exported_once(client):
    ExerciseFactory()
    cached_gauge_publish(ACTIVE_USERS, {LABELS: 1}, now=timezone.now(), ttl_seconds=60)

    body = client.get("/metrics").content.decode()

    for name in (ACTIVE_USERS, UNTOUCHED_EXERCISES):
        assert body.count(f"# TYPE {name} gauge") == 1
        assert body.count(f"# HELP {name} ") == 1
    families = scrape(client)
    assert families[UNTOUCHED_EXERCISES][untouched("Bulgarian", FILL)] == 1
    assert list(families[ACTIVE_USERS].values()) == [1.0]


@pytest.mark.django_db
def test_an_expired_snapshot_is_no_longer_exported(client):
    cached_gauge_publish(ACTIVE_USERS, {LABELS: 1}, now=timezone.now(), ttl_seconds=1)
    assert cached_gauge_samples(ACTIVE_USERS) == {LABELS: 1.0}

    cache.delete(f"metrics:gauge:{ACTIVE_USERS}")  # what the TTL does when the job stops

    assert ACTIVE_USERS not in scrape(client)
    assert cached_gauge_samples(ACTIVE_USERS) is None


def test_publishing_checks_the_number_of_labels():
    with pytest.raises(ValueError, match="takes 5 label values"):
        cached_gauge_publish(ACTIVE_USERS, {("Bulgarian",): 1}, now=timezone.now(), ttl_seconds=1)


@pytest.mark.django_db
def test_metrics_still_answer_when_the_cache_is_down(client):
    ExerciseFactory()
    dead_cache = {
        "default": {
            "BACKEND": "duoniche.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }
    with override_settings(CACHES=dead_cache):
        families = scrape(client)

    assert ACTIVE_USERS not in families
    assert families[UNTOUCHED_EXERCISES][untouched("Bulgarian", FILL)] == 1


def test_a_scrape_without_the_database_drops_only_the_stock():
    """No database access here (pytest-django blocks it): the collector must not raise."""
    cached_gauge_publish(ACTIVE_USERS, {LABELS: 2}, now=timezone.now(), ttl_seconds=60)

    names = [family.name for family in business_gauges.collect()]

    assert names == [STOCK_TARGET, JOB_INTERVAL, ACTIVE_USERS]


@pytest.mark.django_db
def test_the_alert_rules_get_the_stock_target_and_the_job_intervals(client, settings):
    settings.MIN_EXERCISE_COUNT_TO_GENERATE_NEW = 7

    families = scrape(client)

    assert families[STOCK_TARGET] == {(): 7.0}
    intervals = families[JOB_INTERVAL]
    assert intervals[(("job", "refill_stock"),)] == JOBS["refill_stock"].interval_seconds()
    assert (("job", "weekly_reports"),) not in intervals  # a cron job has no interval
