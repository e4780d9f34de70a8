"""`quality_monitor`, `review_processor` and `metrics_updater` end to end in a real Celery worker.

As in `test_celery_worker.py`: `celery -A duoniche worker -Q duoniche --pool solo` runs in a
subprocess on this test's Redis database and PostgreSQL test database; the test sends the task by
name, as beat does, and waits (bounded) for the run's `JobRun`. The review processor's worker talks
to a loopback fake OpenAI-compatible server started by the test. The metrics updater's active users
are then read at this process's `/metrics`: a value computed in the worker, exported by the web.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from duoniche.enums import ExerciseStatus, ReviewSource
from duoniche.models import LLMCall
from exercises.models import Exercise, ExerciseReview
from exercises.services import exercise_change_status
from learning.models import BotProfile
from tests.celery_worker import run_in_worker
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
