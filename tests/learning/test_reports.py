"""Detailed weekly reports: the latest-detailed endpoint, the generation job, its parts."""

import datetime
import re
import threading
import time
from datetime import UTC, timedelta

import psycopg
import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from duoniche.enums import ExerciseStatus, ExerciseType, ReportStatus
from duoniche.job_runs import job_run
from duoniche.jobs import JOBS
from duoniche.telegram_html import visible_length
from learning.models import WeeklyReport
from learning.report_selectors import (
    DetailedReportContext,
    IncorrectAttempt,
    PeriodSummary,
    detailed_report_context,
    period_summary,
    report_window,
)
from learning.report_services import (
    GENERATION_RUN_SECONDS,
    report_generate_detailed,
    report_generation_sweep,
)
from learning.report_writer import (
    MAX_LENGTH_FULL_REPORT,
    deterministic_detailed_report,
    report_text_finish,
)
from learning.tasks import generate_detailed_report
from tests.exercises.factories import ExerciseFactory
from tests.learning.factories import (
    BotProfileFactory,
    ExerciseAttemptFactory,
    WeeklyReportFactory,
)

pytestmark = pytest.mark.django_db
AUTH = {"HTTP_AUTHORIZATION": "Bearer test-token"}
W1 = datetime.date(2025, 6, 2)  # a Monday
W2 = datetime.date(2025, 6, 9)


def url(user_id, bot_id="Bulgarian"):
    return f"/api/v1/users/{user_id}/bots/{bot_id}/reports/latest-detailed"


def at(day, hour=12, minute=0):
    return datetime.datetime.combine(day, datetime.time(hour, minute), tzinfo=UTC)


def exercise(grammar=("numerals: cardinal",), vocabulary=(), **kwargs):
    return ExerciseFactory(
        grammar_tags={"grammar": list(grammar), "vocabulary": list(vocabulary)}, **kwargs
    )


def attempt(user, when, *, correct=True, error_tags=None, feedback="", **exercise_kwargs):
    """An attempt at `when`; a wrong one answers the first distractor with a fresh verdict."""
    ex = exercise_kwargs.pop("exercise", None) or exercise(**exercise_kwargs)
    if correct:
        return ExerciseAttemptFactory(user=user, exercise=ex, created_at=when)
    wrong = ex.data["words"][-1] if "words" in ex.data else ex.data["options"][-1]
    answer = {"words": [wrong]} if "words" in ex.data else {"answer": wrong}
    return ExerciseAttemptFactory(
        user=user,
        exercise=ex,
        created_at=when,
        verdict=None,
        answer=answer,
        answer_text=wrong,
        answer_key=f"key-{wrong}",
        is_correct=False,
        feedback=feedback,
        error_tags=error_tags,
    )


# --- the endpoint -------------------------------------------------------------------------------


def test_an_unconfigured_bot_is_422_before_anything_else(client):
    response = client.get(url(999_999, "Klingon"), **AUTH)

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_bot_id"
    assert "Klingon" in response.json()["detail"]


def test_a_bad_user_id_is_the_422_list(client):
    response = client.get(url("TEST"), **AUTH)

    assert response.status_code == 422
    assert response.json()["detail"] == [
        {
            "loc": ["path", "user_id"],
            "msg": "Input should be a valid integer, unable to parse string as an integer",
            "type": "int_parsing",
        }
    ]


def test_the_service_token_is_required(client):
    profile = BotProfileFactory()

    response = client.get(url(profile.user_id))

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_a_missing_profile_is_404(client):
    profile = BotProfileFactory(bot_id="Serbian")
    WeeklyReportFactory(user=profile.user, bot_id="Bulgarian")

    response = client.get(url(profile.user_id), **AUTH)

    assert response.status_code == 404
    assert response.json()["code"] == "profile_not_found"


def test_no_report_is_404(client):
    profile = BotProfileFactory()
    WeeklyReportFactory(user=profile.user, bot_id="Serbian")

    response = client.get(url(profile.user_id), **AUTH)

    assert response.status_code == 404
    assert response.json()["code"] == "report_not_found"


@pytest.mark.parametrize("status", [ReportStatus.GENERATED, ReportStatus.SENT])
def test_a_written_report_is_left_alone(client, status, django_assert_num_queries):
    profile = BotProfileFactory()
    changed_at = timezone.now() - timedelta(days=2)
    report = WeeklyReportFactory(
        user=profile.user, status=status, full_report="done", status_changed_at=changed_at
    )

    with django_assert_num_queries(2):  # the profile check and the latest report
        response = client.get(url(profile.user_id) + "/", **AUTH)  # the other slash form

    assert response.status_code == 200
    assert response.json() == {"current_report_status": status.value}
    report.refresh_from_db()
    assert (report.status, report.status_changed_at) == (status, changed_at)


def test_a_fresh_generating_report_is_not_requeued(client, django_capture_on_commit_callbacks):
    profile = BotProfileFactory()
    changed_at = timezone.now() - timedelta(minutes=29)
    report = WeeklyReportFactory(
        user=profile.user, status=ReportStatus.GENERATING, status_changed_at=changed_at
    )

    with django_capture_on_commit_callbacks() as callbacks:
        response = client.get(url(profile.user_id), **AUTH)

    assert response.json() == {"current_report_status": "GENERATING"}
    assert callbacks == []
    report.refresh_from_db()
    assert report.status_changed_at == changed_at
    assert report.generation_attempts == 0


@pytest.mark.parametrize(
    ("status", "age"),
    [
        (ReportStatus.PENDING, timedelta(days=1)),
        (ReportStatus.FAILED, timedelta(minutes=1)),
        (ReportStatus.GENERATING, timedelta(minutes=31)),  # stale: the worker died
    ],
)
def test_pending_failed_and_stale_reports_move_to_generating_and_enqueue_one_job(
    client, status, age, django_capture_on_commit_callbacks
):
    profile = BotProfileFactory()
    report = WeeklyReportFactory(
        user=profile.user, status=status, status_changed_at=timezone.now() - age
    )
    before = timezone.now()

    with django_capture_on_commit_callbacks() as callbacks:
        response = client.get(url(profile.user_id), **AUTH)

    assert response.status_code == 200
    assert response.json() == {"current_report_status": "GENERATING"}
    # Published once the transition is in, not on a later commit (a broker error must still be
    # answerable: tests/test_chaos.py); the eager test broker ran the job once, here and now.
    assert callbacks == []
    report.refresh_from_db()
    assert report.status_changed_at >= before
    assert report.generation_attempts == 1
    # Its job arrived: nothing is left for the generation sweep.
    assert report.generation_queued_at is not None
    assert report.generation_started_at >= before


def test_a_failed_report_is_regenerated(client, django_capture_on_commit_callbacks):
    """FAILED is not terminal; the (eager) job writes the report."""
    profile = BotProfileFactory()
    report = WeeklyReportFactory(
        user=profile.user, week_start_date=W1, status=ReportStatus.FAILED, failure_reason="x"
    )
    for day in range(3):
        attempt(profile.user, at(W1 + timedelta(days=day)))
    attempt(profile.user, at(W1, 18), correct=False, error_tags={"grammar": ["noun gender"]})

    with django_capture_on_commit_callbacks(execute=True):
        response = client.get(url(profile.user_id), **AUTH)

    assert response.json() == {"current_report_status": "GENERATING"}
    report.refresh_from_db()
    assert report.status == ReportStatus.GENERATED
    assert report.generation_attempts == 1
    assert report.failure_reason == ""
    assert report.full_generated_at is not None
    assert report.full_report
    assert 0 < visible_length(report.full_report) <= MAX_LENGTH_FULL_REPORT
    assert "4 exercises with 75% accuracy on 3 active days" in report.full_report
    assert "noun gender" in report.full_report

    response = client.get(url(profile.user_id), **AUTH)
    assert response.json() == {"current_report_status": "GENERATED"}


def test_only_the_latest_week_is_requested(client, django_capture_on_commit_callbacks):
    profile = BotProfileFactory()
    newer = WeeklyReportFactory(
        user=profile.user, week_start_date=W2, status=ReportStatus.SENT, full_report="done"
    )
    older = WeeklyReportFactory(user=profile.user, week_start_date=W1)  # greater id, older week

    with django_capture_on_commit_callbacks() as callbacks:
        response = client.get(url(profile.user_id), **AUTH)

    assert response.json() == {"current_report_status": "SENT"}
    assert callbacks == []
    assert older.pk > newer.pk
    older.refresh_from_db()
    assert older.status == ReportStatus.PENDING


def in_parallel(count, call):
    """Run `call` from `count` threads at once, each with its own client and DB connection."""
    barrier = threading.Barrier(count)
    results = [None] * count

    def worker(index):
        try:
            client = Client()
            barrier.wait()
            results[index] = call(client)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_on_a_pending_report_enqueue_one_job():
    """Ten presses at once, one conditional transition, one job."""
    profile = BotProfileFactory()
    report = WeeklyReportFactory(user=profile.user, week_start_date=W1)
    attempt(profile.user, at(W1))

    responses = in_parallel(10, lambda c: c.get(url(profile.user_id), **AUTH))

    assert [r.status_code for r in responses] == [200] * 10
    assert {r.json()["current_report_status"] for r in responses} <= {"GENERATING", "GENERATED"}
    report.refresh_from_db()
    # Every job that runs counts itself (step 1) and the eager jobs ran on commit: exactly one.
    assert report.generation_attempts == 1
    assert report.status == ReportStatus.GENERATED


# --- the generation job -------------------------------------------------------------------------


def generating(report):
    WeeklyReport.objects.filter(pk=report.pk).update(status=ReportStatus.GENERATING)


def test_the_job_writes_exactly_the_report_it_was_given():
    """W1's id fills W1 from W1's attempts; W2 is untouched."""
    profile = BotProfileFactory()
    w1 = WeeklyReportFactory(user=profile.user, week_start_date=W1)
    w2 = WeeklyReportFactory(user=profile.user, week_start_date=W2)
    for _ in range(2):
        attempt(
            profile.user,
            at(W1),
            correct=False,
            grammar=["w1 aorist"],
            error_tags={"grammar": ["w1 error"]},
        )
    for _ in range(5):
        attempt(
            profile.user,
            at(W2),
            correct=False,
            grammar=["w2 future"],
            error_tags={"grammar": ["w2 error"]},
        )
    generating(w1)

    generate_detailed_report.delay(w1.pk)

    w1.refresh_from_db()
    w2.refresh_from_db()
    assert w1.status == ReportStatus.GENERATED
    assert "2 exercises with 0% accuracy" in w1.full_report
    assert "w1 aorist" in w1.full_report
    assert "w1 error" in w1.full_report
    assert "w2" not in w1.full_report
    assert (w2.status, w2.full_report, w2.generation_attempts) == (ReportStatus.PENDING, None, 0)


@pytest.mark.parametrize(
    "status", [ReportStatus.PENDING, ReportStatus.GENERATED, ReportStatus.SENT, ReportStatus.FAILED]
)
def test_a_duplicate_delivery_does_nothing(status):
    report = WeeklyReportFactory(status=status, full_report="kept")

    generate_detailed_report.delay(report.pk)

    report.refresh_from_db()
    assert (report.status, report.full_report, report.generation_attempts) == (status, "kept", 0)


def test_a_second_message_while_the_first_is_generating_does_nothing():
    """The request's publish and a sweep may both queue a report's job: one of them writes it."""
    started = timezone.now() - timedelta(minutes=1)
    report = WeeklyReportFactory(
        status=ReportStatus.GENERATING,
        generation_queued_at=started,
        generation_started_at=started,  # a worker is writing it right now
        generation_attempts=1,
    )

    generate_detailed_report.delay(report.pk)

    report.refresh_from_db()
    assert (report.status, report.full_report, report.generation_attempts) == (
        ReportStatus.GENERATING,
        None,
        1,
    )
    assert report.generation_started_at == started


@pytest.mark.django_db(transaction=True)
def test_two_deliveries_at_once_write_the_report_once():
    """Both messages of one request run at the same time (two workers): one writes the report.

    Another session holds the attempts table, so the first delivery stays inside its generation
    after its claim while the second arrives.
    """
    profile = BotProfileFactory()
    report = WeeklyReportFactory(
        user=profile.user, week_start_date=W1, status=ReportStatus.GENERATING
    )
    attempt(profile.user, at(W1), correct=False)
    db = connection.settings_dict

    def deliver():
        try:
            generate_detailed_report.apply(args=(report.pk,))
        finally:
            connection.close()

    with psycopg.connect(
        dbname=db["NAME"], user=db["USER"], host=db["HOST"], port=db["PORT"] or 5432
    ) as other:
        other.execute("LOCK TABLE learning_exerciseattempt IN ACCESS EXCLUSIVE MODE")
        first = threading.Thread(target=deliver)
        first.start()
        deadline = time.monotonic() + 10
        while not WeeklyReport.objects.filter(
            pk=report.pk, generation_started_at__isnull=False
        ).exists():
            assert time.monotonic() < deadline, "the first delivery never claimed the report"
            time.sleep(0.02)
        second = threading.Thread(target=deliver)
        second.start()
        second.join(timeout=5)  # skips at once; a second writer would wait for the lock
        other.rollback()
    first.join(timeout=30)
    second.join(timeout=30)

    report.refresh_from_db()
    assert (report.status, report.generation_attempts) == (ReportStatus.GENERATED, 1)


def test_a_redelivery_after_the_generation_time_limit_writes_the_report():
    """A worker killed mid-generation: its redelivered message may claim the report again."""
    started = timezone.now() - timedelta(seconds=GENERATION_RUN_SECONDS + 1)
    report = WeeklyReportFactory(
        status=ReportStatus.GENERATING,
        generation_queued_at=started,
        generation_started_at=started,
        generation_attempts=1,
    )

    generate_detailed_report.delay(report.pk)

    report.refresh_from_db()
    assert (report.status, report.generation_attempts) == (ReportStatus.GENERATED, 2)
    assert report.generation_started_at > started


def test_the_job_marks_a_waiting_report_queued_when_it_claims_it():
    report = WeeklyReportFactory(status=ReportStatus.GENERATING)
    assert report.generation_queued_at is None

    generate_detailed_report.delay(report.pk)

    report.refresh_from_db()
    assert report.status == ReportStatus.GENERATED
    assert report.generation_queued_at is not None
    assert report.generation_started_at is not None


def test_a_missing_report_is_not_an_error():
    generate_detailed_report.delay(987_654_321)

    assert not WeeklyReport.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_failure_marks_the_report_failed_and_it_can_be_asked_again(
    client, django_capture_on_commit_callbacks
):
    profile = BotProfileFactory()
    report = WeeklyReportFactory(
        user=profile.user, status=ReportStatus.GENERATING, week_start_date=W1
    )
    attempt(profile.user, at(W1), correct=False)
    db = connection.settings_dict
    now = timezone.now()

    # A real database failure: another session holds the attempts table, our statements time out.
    with psycopg.connect(
        dbname=db["NAME"], user=db["USER"], host=db["HOST"], port=db["PORT"] or 5432
    ) as other:
        other.execute("LOCK TABLE learning_exerciseattempt IN ACCESS EXCLUSIVE MODE")
        with connection.cursor() as cursor:
            cursor.execute("SET statement_timeout = 300")
        report_generate_detailed(report_id=report.pk, now=now)
        with connection.cursor() as cursor:
            cursor.execute("SET statement_timeout = 0")
        other.rollback()

    report.refresh_from_db()
    assert report.status == ReportStatus.FAILED
    assert report.failure_reason.startswith("OperationalError: ")
    assert report.status_changed_at == now
    assert report.generation_attempts == 1
    assert report.full_report is None

    with django_capture_on_commit_callbacks(execute=True):
        response = client.get(url(profile.user_id), **AUTH)

    assert response.json() == {"current_report_status": "GENERATING"}
    report.refresh_from_db()
    assert (report.status, report.generation_attempts) == (ReportStatus.GENERATED, 2)


# --- the generation sweep (the outbox) ---------------------------------------------------------


def test_the_sweep_queues_the_oldest_waiting_reports_first_within_its_batch(settings):
    """The (eager) test broker runs each queued job at once: queued reports get written."""
    settings.REPORT_GENERATION_SWEEP_BATCH = 2
    now = timezone.now()
    waiting = [
        WeeklyReportFactory(status=ReportStatus.GENERATING, status_changed_at=now - age)
        for age in (timedelta(minutes=1), timedelta(minutes=3), timedelta(minutes=2))
    ]
    already_queued = WeeklyReportFactory(
        status=ReportStatus.GENERATING,
        status_changed_at=now - timedelta(minutes=9),
        generation_queued_at=now - timedelta(minutes=9),
    )
    WeeklyReportFactory(status=ReportStatus.PENDING, status_changed_at=now - timedelta(days=1))

    assert report_generation_sweep(now=now, dry_run=True) == {"waiting": 2, "queued": 0}
    assert all(
        r.generation_queued_at is None
        for r in WeeklyReport.objects.filter(pk__in=[report.pk for report in waiting])
    )

    assert report_generation_sweep(now=now, dry_run=False) == {"waiting": 2, "queued": 2}

    statuses = dict(WeeklyReport.objects.values_list("pk", "status"))
    assert statuses[waiting[1].pk] == statuses[waiting[2].pk] == ReportStatus.GENERATED
    assert statuses[waiting[0].pk] == ReportStatus.GENERATING  # the newest: the next run
    assert statuses[already_queued.pk] == ReportStatus.GENERATING  # its job is on its way
    assert report_generation_sweep(now=now, dry_run=False) == {"waiting": 1, "queued": 1}
    assert report_generation_sweep(now=now, dry_run=False) == {"waiting": 0, "queued": 0}


def test_the_sweep_is_a_registered_periodic_job():
    outcome = job_run("report_generation_sweep")

    assert outcome.outcome == "succeeded"
    assert outcome.stats == {"waiting": 0, "queued": 0}
    assert JOBS["report_generation_sweep"].interval_seconds() == 60


# --- period summary -----------------------------------------------------------------------------


def test_period_summary_counts_attempts_days_and_tags():
    profile = BotProfileFactory()
    user = profile.user
    start, end = report_window(W1)
    shared = exercise(grammar=["aorist", "articles"], vocabulary=["food"])
    attempt(user, at(W1, 0, 0), exercise=shared)  # the window's first instant
    attempt(
        user, at(W1, 23, 59), exercise=shared, correct=False, error_tags={"grammar": ["aorist"]}
    )
    attempt(
        user,
        at(W1 + timedelta(days=6), 23, 59),
        correct=False,
        grammar=["aorist"],
        error_tags={"grammar": "articles", "vocabulary": ["food", "drinks"]},  # bare string
    )
    legacy = exercise(grammar=["x"])
    type(legacy).objects.filter(pk=legacy.pk).update(
        grammar_tags={"grammar": "imperfect", "vocabulary": "travel"}
    )
    attempt(user, at(W1 + timedelta(days=2)), exercise=legacy)
    attempt(user, at(W1 + timedelta(days=2)), correct=False, error_tags=None)  # no tags at all
    # Outside the window, another bot, another user: not counted.
    attempt(user, end, grammar=["later"])
    attempt(user, start - timedelta(microseconds=1), grammar=["earlier"])
    serbian = ExerciseFactory(
        exercise_language="Serbian",
        data={"text_with_blanks": "Ja ___ kafu.", "words": ["pijem", "piješ"]},
    )
    attempt(user, at(W1), exercise=serbian)
    attempt(BotProfileFactory().user, at(W1), grammar=["someone else"])

    summary = period_summary(user_id=user.pk, bot_id="Bulgarian", start=start, end=end)

    assert summary == PeriodSummary(
        active_days=3,
        total_attempts=5,
        correct_attempts=2,
        grammar_tags={"aorist": 3, "articles": 2, "imperfect": 1, "numerals: cardinal": 1},
        vocab_tags={"food": 2, "travel": 1},
        error_grammar_tags={"aorist": 1, "articles": 1},
        error_vocab_tags={"food": 1, "drinks": 1},
        missed_grammar_tags={"aorist": 2, "articles": 1, "numerals: cardinal": 1},
    )
    assert summary.accuracy == 40.0


def test_period_summary_of_an_empty_window_is_zeros(django_assert_num_queries):
    profile = BotProfileFactory()
    start, end = report_window(W1)

    with django_assert_num_queries(1):
        summary = period_summary(user_id=profile.user_id, bot_id="Bulgarian", start=start, end=end)

    assert summary == PeriodSummary()
    assert (summary.accuracy, summary.describe()) == (0.0, "")


def test_period_summary_uses_one_aggregate_and_one_tag_query(django_assert_num_queries):
    profile = BotProfileFactory()
    for day in range(5):
        attempt(profile.user, at(W1 + timedelta(days=day)), correct=day % 2 == 0)
    start, end = report_window(W1)

    with django_assert_num_queries(2):
        summary = period_summary(user_id=profile.user_id, bot_id="Bulgarian", start=start, end=end)

    assert (summary.total_attempts, summary.correct_attempts, summary.active_days) == (5, 3, 5)


# --- the context --------------------------------------------------------------------------------


def test_context_covers_this_week_and_the_week_before():
    profile = BotProfileFactory()
    user = profile.user
    report = WeeklyReportFactory(user=user, week_start_date=W2)
    attempt(user, at(W1), grammar=["previous week"])
    attempt(user, at(W1, 13), correct=False)
    attempt(user, at(W2 + timedelta(days=6)), grammar=["this week"])
    attempt(user, at(W2 + timedelta(days=7)), grammar=["next week"])

    context = detailed_report_context(report)

    assert (context.report_id, context.bot_id, context.week_start) == (report.pk, "Bulgarian", W2)
    assert (context.previous.total_attempts, context.previous.correct_attempts) == (2, 1)
    assert "previous week" in context.previous.grammar_tags
    assert (context.current.total_attempts, context.current.correct_attempts) == (1, 1)
    assert "this week" in context.current.grammar_tags
    assert context.incorrect_attempts == []  # the previous week's mistake is not this week's


def test_context_keeps_the_15_most_recent_mistakes_on_published_exercises():
    profile = BotProfileFactory()
    user = profile.user
    report = WeeklyReportFactory(user=user, week_start_date=W1)
    for minute in range(20):
        attempt(user, at(W1, 8, minute), correct=False, grammar=[f"minute {minute}"])
    attempt(user, at(W1, 9), exercise=exercise(status=ExerciseStatus.ARCHIVED), correct=False)
    serbian = ExerciseFactory(
        exercise_language="Serbian",
        data={"text_with_blanks": "Ja ___ kafu.", "words": ["pijem", "piješ"]},
    )
    attempt(user, at(W1, 9), exercise=serbian, correct=False)
    attempt(user, at(W1, 10))  # correct: not a mistake

    mistakes = detailed_report_context(report).incorrect_attempts

    assert [m.exercise_tags["grammar"] for m in mistakes] == [
        [f"minute {minute}"] for minute in range(19, 4, -1)
    ]


def test_context_mistakes_carry_the_task_the_answer_and_the_correct_answer():
    profile = BotProfileFactory()
    user = profile.user
    report = WeeklyReportFactory(user=user, week_start_date=W1)
    fill = ExerciseFactory(
        data={
            "text_with_blanks": "Аз ___ кафе и ___ вода.",
            "words": ["пия", "искам", "ям", "пише"],
        },
        correct_answer={"words": ["пия", "искам"]},
        grammar_tags={"grammar": ["present tense"], "vocabulary": "drinks"},
    )
    ExerciseAttemptFactory(
        user=user,
        exercise=fill,
        created_at=at(W1, 9),
        verdict=None,
        answer={"words": ["ям", "пише"]},
        answer_text="ям;пише",
        answer_key="k",
        is_correct=False,
        feedback="<b>ям</b> means eat.",
        error_tags={"grammar": ["verb choice"], "vocabulary": []},
    )
    choose = ExerciseFactory(
        exercise_type=ExerciseType.CHOOSE_SENTENCE,
        data={"options": ["Той е тук.", "Той са тук.", "Той сме тук."]},
        grammar_tags={"grammar": ["to be"], "vocabulary": []},
    )
    attempt(user, at(W1, 10), exercise=choose, correct=False)

    later, earlier = detailed_report_context(report).incorrect_attempts

    assert later == IncorrectAttempt(
        exercise_type="choose_sentence",
        exercise_text="Той сме тук.",
        user_answer="Той сме тук.",
        correct_answer="Той е тук.",
        feedback="N/A",
        exercise_tags={"grammar": ["to be"], "vocabulary": []},
        error_tags={"grammar": [], "vocabulary": []},
    )
    assert earlier == IncorrectAttempt(
        exercise_type="fill_in_the_blank",
        exercise_text="Аз ям кафе и пише вода.",
        user_answer="ям, пише",
        correct_answer="пия, искам",
        feedback="<b>ям</b> means eat.",
        exercise_tags={"grammar": ["present tense"], "vocabulary": ["drinks"]},
        error_tags={"grammar": ["verb choice"], "vocabulary": []},
    )


# --- the deterministic report -------------------------------------------------------------------


def context_with(current, previous=None):
    return DetailedReportContext(
        report_id=1,
        bot_id="Bulgarian",
        week_start=W1,
        current=current,
        previous=previous or PeriodSummary(),
        incorrect_attempts=[],
    )


def test_deterministic_report_sections():
    current = PeriodSummary(
        active_days=4,
        total_attempts=40,
        correct_attempts=30,
        grammar_tags={"aorist": 9, "articles": 5, "a<b>&c": 5, "plural": 1},
        vocab_tags={"food": 3},
        error_grammar_tags={"aorist": 4, "articles": 2},
        error_vocab_tags={"food": 3, "<script>": 1},
    )
    previous = PeriodSummary(active_days=2, total_attempts=8, correct_attempts=3)

    text = deterministic_detailed_report(context_with(current, previous), "en")

    assert text.startswith("<b>Your detailed weekly report</b>\n\n")
    assert "40 exercises with 75% accuracy on 4 active days" in text
    assert "grammar: aorist, a&lt;b&gt;&amp;c, articles; vocabulary: food." in text
    assert "mistakes were in: aorist, food, articles." in text
    assert "Last week: 8 exercises with 38% accuracy." in text  # 37.5 rounds half up
    assert text.count("Suggestion:") == 2
    assert "extra time on aorist." in text
    assert "extra time on food." in text
    assert "<script>" not in text
    assert "plural" not in text


def test_deterministic_report_without_mistakes_or_a_previous_week():
    current = PeriodSummary(active_days=1, total_attempts=3, correct_attempts=3)

    text = deterministic_detailed_report(context_with(current), "en")

    assert "No recurring mistakes this week." in text
    assert "Last week" not in text
    assert "Suggestion" not in text
    assert "You practised most" not in text


def test_deterministic_report_is_localised():
    current = PeriodSummary(active_days=1, total_attempts=3, correct_attempts=3)

    english = deterministic_detailed_report(context_with(current), "en")
    russian = deterministic_detailed_report(context_with(current), "ru-RU")

    assert russian != english
    assert "3" in russian


# --- length -------------------------------------------------------------------------------------


def test_a_short_report_text_is_kept_as_is():
    text = "<b>Heading</b>\n\nSome &amp; text"

    assert report_text_finish(text) == text


def test_the_length_cap_cuts_at_a_word_boundary_and_keeps_tags_balanced():
    text = "<b>Title</b>\n\n" + "<i>word &amp; <u>more words</u> here</i> " * 400

    cut = report_text_finish(text)

    assert visible_length(cut) <= MAX_LENGTH_FULL_REPORT
    assert visible_length(cut) > MAX_LENGTH_FULL_REPORT - 20
    assert cut.endswith("…")
    body = cut.removesuffix("…")
    for tag in ("b", "i", "u"):
        assert body.count(f"<{tag}>") == body.count(f"</{tag}>")
    visible = re.sub(r"</?[a-z]+>", "", body)
    assert visible.split()[-1] in {"word", "&amp;", "more", "words", "here"}
    assert not visible.endswith((" ", "&", "&amp"))


def test_the_length_cap_never_cuts_inside_an_entity():
    cut = report_text_finish("&amp;" * 5000)

    assert cut == "&amp;" * (MAX_LENGTH_FULL_REPORT - 1) + "…"


def test_a_generated_report_respects_the_length_cap():
    profile = BotProfileFactory()
    report = WeeklyReportFactory(user=profile.user, week_start_date=W1, status="GENERATING")
    for number in range(4):
        topic = f"topic{number} <&> " * 120  # tags are unbounded in the data: a huge report
        attempt(
            profile.user,
            at(W1, 10, number),
            correct=False,
            grammar=[topic],
            vocabulary=[topic],
            error_tags={"grammar": [topic]},
        )

    report_generate_detailed(report_id=report.pk, now=timezone.now())

    report.refresh_from_db()
    assert report.status == ReportStatus.GENERATED
    assert report.full_report.endswith("…")
    assert MAX_LENGTH_FULL_REPORT - 20 < visible_length(report.full_report) <= 3996
    assert report.full_report.count("<b>") == report.full_report.count("</b>") == 1
    assert "<&>" not in report.full_report
