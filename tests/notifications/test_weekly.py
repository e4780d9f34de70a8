"""The `weekly_reports` job (docs/jobs.md): short reports and their notifications."""

import datetime
import time
from datetime import UTC, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from duoniche.enums import NotificationStatus, NotificationType, ProfileStatus, ReportStatus
from duoniche.job_runs import Outcome, job_run
from duoniche.jobs import JOBS, lazy_body
from duoniche.texts import render
from learning.models import BotProfile, ExerciseAttempt, WeeklyReport
from learning.report_selectors import weekly_report_week_start
from learning.report_services import weekly_reports_create
from notifications.models import NotificationLog
from notifications.weekly import weekly_reports
from tests.exercises.factories import ExerciseFactory
from tests.learning.factories import BotProfileFactory, TelegramUserFactory

# Transactional: the producer sends on commit, and the job commits batch by batch as in production.
pytestmark = pytest.mark.django_db(transaction=True)

NOW = datetime.datetime(2025, 7, 7, 9, 0, tzinfo=UTC)  # a Monday, the job's slot
WEEK = datetime.date(2025, 6, 30)  # the week it reports: [06-30 00:00, 07-07 00:00) UTC
START = datetime.datetime(2025, 6, 30, tzinfo=UTC)
END = datetime.datetime(2025, 7, 7, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


@pytest.fixture(autouse=True)
def _no_batch_delay(settings):
    settings.REPORT_NOTIFICATION_BATCH_DELAY_SECONDS = 0


@pytest.fixture
def notifier(settings):
    """The producer enabled, publishing to an in-memory kombu transport (no network)."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = "memory://"


@pytest.fixture
def bulgarian():
    return ExerciseFactory(exercise_language="Bulgarian")


@pytest.fixture
def serbian():
    return ExerciseFactory(
        exercise_language="Serbian",
        data={"text_with_blanks": "Ja ___ kafu.", "words": ["pijem", "jedem"]},
    )


def give(
    user, exercise, times, *, correct=None, when=START + timedelta(hours=10), days=1, step=MINUTE
):
    """`times` attempts of `user` on `exercise`, the first `correct` of them right (all by
    default): the n-th at `when + n × step`, moved on by `n mod days` days."""
    correct = times if correct is None else correct
    verdict = exercise.verdicts.get(is_reference=True)
    ExerciseAttempt.objects.bulk_create(
        ExerciseAttempt(
            user=user,
            exercise=exercise,
            verdict=verdict if n < correct else None,
            answer=verdict.answer,
            answer_text=verdict.answer_text,
            answer_key=verdict.answer_key,
            is_correct=n < correct,
            created_at=when + timedelta(days=n % days) + n * step,
        )
        for n in range(times)
    )


def learners(count, exercise, attempts=15, **profile):
    """`count` profiles in `exercise`'s bot, each with `attempts` attempts last week."""
    profiles = [
        BotProfileFactory(bot_id=exercise.exercise_language, **profile) for _ in range(count)
    ]
    for p in profiles:
        give(p.user, exercise, attempts)
    return profiles


def run(now=NOW, dry_run=False):
    return weekly_reports(now=now, dry_run=dry_run)


# --- the week -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "now",
    [
        NOW,
        datetime.datetime(2025, 7, 7, 0, 0, tzinfo=UTC),
        datetime.datetime(2025, 7, 10, 15, 0, tzinfo=UTC),  # a late run (Thursday)
        datetime.datetime(2025, 7, 13, 23, 59, 59, tzinfo=UTC),  # the last second of the week
    ],
)
def test_a_run_in_any_moment_of_the_week_reports_the_previous_week(now):
    assert weekly_report_week_start(now) == WEEK


def test_a_hand_computed_week(bulgarian, serbian):
    profile = BotProfileFactory(bot_id="Bulgarian", user_language="en")
    user = profile.user
    # In the window: 17 attempts, 13 correct, on 3 UTC days (06-30, 07-01, 07-06).
    give(user, bulgarian, 10, correct=8, when=START)  # from 06-30 00:00 (the start is included)
    give(user, bulgarian, 6, correct=4, when=START + timedelta(days=1, hours=10))
    give(user, bulgarian, 1, when=END - timedelta(seconds=1))  # 07-06 23:59:59
    # Outside it: before the start, from the end on (excluded), and in another language.
    give(user, bulgarian, 5, correct=0, when=START - timedelta(seconds=1), step=-MINUTE)
    give(user, bulgarian, 5, correct=0, when=END)
    give(user, serbian, 5, correct=0)

    stats = run()

    report = WeeklyReport.objects.get()
    assert (report.user_id, report.bot_id, report.week_start_date) == (user.pk, "Bulgarian", WEEK)
    assert report.status == ReportStatus.PENDING
    assert report.generated_at == report.status_changed_at == NOW
    # 13 / 17 = 76.47 % → 76.
    assert report.short_report == render(
        "weekly_report", "en", active_days=3, total_attempts=17, accuracy=76
    )
    assert "Active days: 3 of 7" in report.short_report
    assert "Exercises done: 17" in report.short_report
    assert "Accuracy: 76%" in report.short_report
    profile.refresh_from_db()
    assert profile.last_report_generated_at == NOW
    assert stats["week_start"] == "2025-06-30"
    assert stats["reports_created"] == 1
    assert stats["profiles_updated"] == 1


def test_accuracy_rounds_half_up(bulgarian):
    profile = BotProfileFactory()
    give(profile.user, bulgarian, 16, correct=9)  # 56.25 % → 56
    other = BotProfileFactory()
    give(other.user, bulgarian, 16, correct=12)  # 75 %
    odd = BotProfileFactory()
    give(odd.user, bulgarian, 40, correct=1)  # 2.5 % → 3 (half up, not to even)

    run()

    texts = dict(WeeklyReport.objects.values_list("user_id", "short_report"))
    assert "Accuracy: 56%" in texts[profile.user_id]
    assert "Accuracy: 75%" in texts[other.user_id]
    assert "Accuracy: 3%" in texts[odd.user_id]


@pytest.mark.parametrize(("attempts", "reported"), [(14, False), (15, True), (16, True)])
def test_the_15_attempt_threshold(bulgarian, attempts, reported):
    profile = BotProfileFactory()
    give(profile.user, bulgarian, attempts, correct=0)

    run()

    assert WeeklyReport.objects.exists() is reported
    profile.refresh_from_db()
    assert (profile.last_report_generated_at == NOW) is reported


def test_only_the_language_with_enough_attempts_is_reported(bulgarian, serbian):
    """20 Bulgarian + 3 Serbian attempts → a Bulgarian report only."""
    user = TelegramUserFactory()
    bg = BotProfileFactory(user=user, bot_id="Bulgarian")
    sr = BotProfileFactory(user=user, bot_id="Serbian")
    give(user, bulgarian, 20)
    give(user, serbian, 3)

    run()

    assert list(WeeklyReport.objects.values_list("bot_id", flat=True)) == ["Bulgarian"]
    bg.refresh_from_db()
    sr.refresh_from_db()
    assert bg.last_report_generated_at == NOW
    assert sr.last_report_generated_at is None


def test_both_languages_are_reported_when_both_qualify(bulgarian, serbian):
    user = TelegramUserFactory()
    BotProfileFactory(user=user, bot_id="Bulgarian")
    BotProfileFactory(user=user, bot_id="Serbian", user_language="sr")
    give(user, bulgarian, 15)
    give(user, serbian, 15, correct=3)

    run()

    reports = dict(WeeklyReport.objects.values_list("bot_id", "short_report"))
    assert set(reports) == {"Bulgarian", "Serbian"}
    assert reports["Serbian"] == render(
        "weekly_report", "sr", active_days=1, total_attempts=15, accuracy=20
    )


@pytest.mark.parametrize("status", [ProfileStatus.BLOCKED, ProfileStatus.INACTIVE])
def test_inactive_and_blocked_profiles_are_skipped(bulgarian, status):
    learners(1, bulgarian, status=status)

    stats = run()

    assert not WeeklyReport.objects.exists()
    assert not NotificationLog.objects.exists()
    assert stats["reports_created"] == 0


def test_attempts_without_a_profile_in_that_bot_are_skipped(bulgarian, serbian):
    user = TelegramUserFactory()
    BotProfileFactory(user=user, bot_id="Serbian")  # a profile, but in another bot
    give(user, bulgarian, 30)

    run()

    assert not WeeklyReport.objects.exists()


def test_running_twice_creates_nothing_new(bulgarian, notifier):
    (profile,) = learners(1, bulgarian)

    first = run()
    report = WeeklyReport.objects.get()
    second = run(now=NOW + timedelta(hours=1))

    assert WeeklyReport.objects.get() == report
    assert NotificationLog.objects.count() == 1
    assert first["reports_created"] == first["notifications_new"] == 1
    assert second["reports_created"] == second["notifications_new"] == 0
    profile.refresh_from_db()
    assert profile.last_report_generated_at == NOW  # not moved by the second run
    report.refresh_from_db()
    assert report.short_notified_at == NOW


def test_an_existing_report_of_the_week_is_kept(bulgarian):
    (profile,) = learners(1, bulgarian)
    existing = WeeklyReport.objects.create(
        user=profile.user, bot_id="Bulgarian", week_start_date=WEEK, short_report="earlier"
    )

    stats = run()

    assert list(WeeklyReport.objects.all()) == [existing]
    assert WeeklyReport.objects.get().short_report == "earlier"
    assert stats["reports_created"] == 0
    profile.refresh_from_db()
    assert profile.last_report_generated_at is None


def test_the_runner_reruns_nothing_in_the_same_iso_week(bulgarian, notifier):
    learners(2, bulgarian)

    first = job_run("weekly_reports", now=NOW)
    refire = job_run("weekly_reports", now=NOW + timedelta(hours=1))
    forced = job_run("weekly_reports", now=NOW + timedelta(hours=2), force=True)

    assert (first.outcome, first.period_key) == (Outcome.SUCCEEDED, "2025-W28")
    assert first.stats["reports_created"] == 2
    assert first.stats["notifications_enqueued"] == 2
    assert refire.outcome == Outcome.SKIPPED_PERIOD
    assert forced.outcome == Outcome.SUCCEEDED
    assert forced.stats["reports_created"] == forced.stats["notifications_new"] == 0
    assert WeeklyReport.objects.count() == NotificationLog.objects.count() == 2


def test_the_job_is_registered_with_its_schedule():
    job = JOBS["weekly_reports"]

    assert (job.body, job.task) == (
        lazy_body("notifications.weekly.weekly_reports"),
        "notifications.weekly_reports",
    )
    assert (job.soft_time_limit, job.time_limit, job.lock_ttl) == (3000, 3600, 3660)
    assert job.describe_schedule() == "crontab 0 9,10,11,12 * * mon (UTC)"
    assert job.period_key(datetime.datetime(2025, 7, 7, 12, 0, tzinfo=UTC)) == "2025-W28"


# --- the short text and the notification --------------------------------------------------------


def test_the_short_report_is_in_the_profiles_language(bulgarian, notifier):
    learners(1, bulgarian, user_language="ru")

    run()

    report = WeeklyReport.objects.get()
    russian = render("weekly_report", "ru", active_days=1, total_attempts=15, accuracy=100)
    assert report.short_report == russian
    assert russian != render("weekly_report", "en", active_days=1, total_attempts=15, accuracy=100)
    log = NotificationLog.objects.get()
    assert log.text == russian
    assert log.reply_markup["inline_keyboard"][0][0]["text"] == render(
        "weekly_report_detailed_button", "ru"
    )


def test_an_unknown_interface_language_falls_back_to_english(bulgarian):
    learners(1, bulgarian, user_language="xx")

    run()

    assert WeeklyReport.objects.get().short_report == render(
        "weekly_report", "en", active_days=1, total_attempts=15, accuracy=100
    )


def test_the_notification_carries_the_button_and_the_report(bulgarian, notifier):
    (profile,) = learners(1, bulgarian)

    stats = run()

    report = WeeklyReport.objects.get()
    log = NotificationLog.objects.get()
    assert log.dedupe_key == f"weekly_report_short:{report.pk}"
    assert (log.user_id, log.bot_id) == (profile.user_id, "Bulgarian")
    assert log.notification_type == NotificationType.WEEKLY_REPORT
    assert log.is_full_report is False
    assert log.text == report.short_report
    assert "/next" not in log.text
    assert log.reply_markup == {
        "inline_keyboard": [
            [{"text": "✅ ⏳ 📊", "callback_data": f"full_weekly_report:yes:{report.pk}"}]
        ]
    }
    assert log.metadata == {"report_id": report.pk}
    assert log.context == {"report_id": report.pk}
    assert log.status == NotificationStatus.ENQUEUED
    assert report.short_notified_at == NOW
    assert stats["notifications_enqueued"] == 1


def test_without_a_broker_the_notification_is_logged_and_the_report_stays_unnotified(bulgarian):
    learners(1, bulgarian)  # tests run eagerly: the producer is disabled

    stats = run()

    log = NotificationLog.objects.get()
    assert (log.status, log.error) == (NotificationStatus.SKIPPED, "no broker")
    assert WeeklyReport.objects.get().short_notified_at is None
    assert stats["notifications_enqueued"] == 0
    assert stats["notifications_not_enqueued"] == 1


def test_a_report_of_a_profile_blocked_since_is_not_notified(bulgarian, notifier):
    profiles = learners(2, bulgarian)
    weekly_reports_create(now=NOW)
    BotProfile.objects.filter(pk=profiles[0].pk).update(status=ProfileStatus.BLOCKED)

    run()

    assert list(NotificationLog.objects.values_list("user_id", flat=True)) == [profiles[1].user_id]
    notified = dict(WeeklyReport.objects.values_list("user_id", "short_notified_at"))
    assert notified == {profiles[0].user_id: None, profiles[1].user_id: NOW}


def test_reports_of_the_week_left_unnotified_are_notified_by_the_next_run(bulgarian, notifier):
    learners(3, bulgarian)
    weekly_reports_create(now=NOW - timedelta(hours=1))  # a run that died before notifying
    old = WeeklyReport.objects.create(
        user=TelegramUserFactory(),
        bot_id="Bulgarian",
        week_start_date=WEEK - timedelta(days=7),
        short_report="the week before",
    )
    BotProfileFactory(user=old.user)

    stats = run()

    assert stats["reports_created"] == 0
    assert stats["notifications_enqueued"] == 3
    assert not NotificationLog.objects.filter(user=old.user).exists()
    assert WeeklyReport.objects.filter(week_start_date=WEEK, short_notified_at=NOW).count() == 3


def test_notifications_go_out_in_batches_with_a_pause_between(bulgarian, notifier, settings):
    settings.REPORT_NOTIFICATION_BATCH_SIZE = 10
    settings.REPORT_NOTIFICATION_BATCH_DELAY_SECONDS = 0.2
    learners(25, bulgarian)

    started = time.monotonic()
    stats = run()
    elapsed = time.monotonic() - started

    assert stats["batches"] == 3
    assert stats["notifications_enqueued"] == 25
    assert elapsed >= 0.4  # two pauses: between batches 1-2 and 2-3, none after the last
    ids = list(NotificationLog.objects.order_by("pk").values_list("context__report_id", flat=True))
    assert ids == sorted(WeeklyReport.objects.values_list("pk", flat=True))


def test_a_dry_run_writes_nothing_and_does_not_pause(bulgarian, settings):
    settings.REPORT_NOTIFICATION_BATCH_SIZE = 1
    settings.REPORT_NOTIFICATION_BATCH_DELAY_SECONDS = 5
    learners(3, bulgarian)

    started = time.monotonic()
    stats = run(dry_run=True)

    assert time.monotonic() - started < 2
    assert stats == {
        "week_start": "2025-06-30",
        "reports_to_create": 3,
        "reports_waiting_notification": 0,
    }
    assert not WeeklyReport.objects.exists()
    assert not NotificationLog.objects.exists()
    assert not BotProfile.objects.filter(last_report_generated_at__isnull=False).exists()


# --- query counts -------------------------------------------------------------------------------


def _queries(callable_):
    with CaptureQueriesContext(connection) as captured:
        callable_()
    return len(captured.captured_queries)


@pytest.mark.parametrize("count", [10, 100])
def test_creating_reports_takes_a_fixed_number_of_queries(
    bulgarian, count, django_assert_max_num_queries
):
    """One grouped query, one INSERT, one UPDATE, whatever the number of learners."""
    learners(count, bulgarian)

    with django_assert_max_num_queries(5):
        created = weekly_reports_create(now=NOW)

    assert created.candidates == WeeklyReport.objects.count() == count
    assert BotProfile.objects.filter(last_report_generated_at=NOW).count() == count


def test_the_whole_job_issues_as_many_queries_for_100_learners_as_for_10(
    bulgarian, serbian, notifier, settings
):
    """With one notification batch, the count does not depend on the learners."""
    settings.REPORT_NOTIFICATION_BATCH_SIZE = 1000
    learners(10, bulgarian)
    few = _queries(run)
    WeeklyReport.objects.all().delete()
    NotificationLog.objects.all().delete()
    BotProfile.objects.update(last_report_generated_at=None)
    learners(90, serbian)

    many = _queries(run)

    assert WeeklyReport.objects.count() == NotificationLog.objects.count() == 100
    assert WeeklyReport.objects.filter(short_notified_at=NOW).count() == 100
    assert many == few


def test_batches_cost_a_fixed_number_of_queries_each(bulgarian, notifier, settings):
    settings.REPORT_NOTIFICATION_BATCH_SIZE = 10
    learners(10, bulgarian)
    one_batch = _queries(run)
    WeeklyReport.objects.all().delete()
    NotificationLog.objects.all().delete()
    learners(20, bulgarian)  # 30 reports now: 3 batches

    three_batches = _queries(run)

    per_batch = (three_batches - one_batch) / 2
    assert per_batch == int(per_batch) <= 10
