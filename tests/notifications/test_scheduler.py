"""The `notification_scheduler` job (docs/jobs.md).

Every test sends through the real producer to the test Redis, on a queue of its own, and reads the
messages back: "sent" means a message on the Notifier queue and an `enqueued` log row.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from duoniche.enums import NotificationStatus, ProfileStatus, ReportStatus
from duoniche.job_runs import Outcome, job_run
from duoniche.jobs import JOBS, lazy_body
from duoniche.models import JobLock, JobRun
from duoniche.texts import render
from learning.models import BotProfile, WeeklyReport
from learning.profiles import profiles_mark_long_break_sent
from learning.sessions import profile_next_action
from notifications import scheduler
from notifications.drafts import long_break_step
from notifications.models import NotificationLog
from notifications.relevance import notification_is_relevant
from notifications.scheduler import (
    NotificationSchedulerError,
    long_break_reminders_deliver,
    notification_scheduler,
    session_reminders_send,
)
from notifications.selectors import profiles_due_for_long_break
from tests.exercises.factories import ExerciseFactory
from tests.learning.factories import BotProfileFactory, WeeklyReportFactory
from tests.notifications.factories import NotificationLogFactory
from tests.notifications.test_producer import DEAD_BROKER, NotifierQueue

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.filterwarnings("ignore::celery.exceptions.AlwaysEagerIgnored"),
]

#: A Wednesday, midday UTC.
NOW = datetime(2025, 7, 9, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)
D = timedelta(days=1)


@pytest.fixture
def notifier(settings) -> Iterator[NotifierQueue]:
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.NOTIFICATION_TASKS_QUEUE_NAME = f"notification_tasks_test_{uuid.uuid4().hex[:12]}"
    queue = NotifierQueue(settings.CELERY_BROKER_URL, settings.NOTIFICATION_TASKS_QUEUE_NAME)
    queue.raw()  # a leftover of an interrupted run
    try:
        yield queue
    finally:
        queue.close()


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    """One scheduler cycle at `now`, its on-commit sends executed."""

    def run(now: datetime = NOW, *, dry_run: bool = False) -> dict[str, Any]:
        with django_capture_on_commit_callbacks(execute=True):
            return notification_scheduler(now=now, dry_run=dry_run)

    return run


def logs_of(profile: BotProfile) -> list[NotificationLog]:
    return list(NotificationLog.objects.filter(user_id=profile.user_id).order_by("pk"))


def long_break_profile(
    *,
    inactive: timedelta | None,
    last_type: str | None = None,
    since_sent: timedelta | None = None,
    now: datetime = NOW,
    **fields: Any,
) -> BotProfile:
    return BotProfileFactory(
        last_exercise_at=None if inactive is None else now - inactive,
        last_long_break_reminder_type_sent=last_type,
        last_long_break_reminder_sent_at=None if since_sent is None else now - since_sent,
        **fields,
    )


# --- B. the long-break ladder: worked examples --------------------------------------------------

LADDER = [
    # (days inactive, last type sent, since last sent, expected step)
    (0, None, None, None),
    (1, None, None, "1d"),
    (2, None, None, "1d"),
    (2, "1d", 48 * H, None),
    (3, "1d", 48 * H, "3d"),
    (3, "1d", 1 * H, None),
    (3, "1d", 46 * H, None),
    (3, "1d", 47 * H, "3d"),
    (8, "5d", 24 * H, None),
    (8, "5d", 47 * H, "8d"),
    (12, "5d", 47 * H, "8d"),
    (12, "5d", 200 * H, "8d"),
    (13, "8d", 1 * H, None),
    (13, "8d", 48 * H, "13d"),
    (60, None, None, "30d"),
    (90, "30d", 47 * H, "90d"),
    (90, "30d", 500 * H, "90d"),
    (100, "90d", None, None),
    (100, "90d", 500 * H, None),
    (2, "2w", None, "1d"),
    (60, "2w", None, "30d"),
]


@pytest.mark.parametrize(("days", "last_type", "since_sent", "expected"), LADDER)
def test_the_ladder_table(notifier, run, days, last_type, since_sent, expected):
    profile = long_break_profile(inactive=days * D, last_type=last_type, since_sent=since_sent)

    stats = run()

    logs = logs_of(profile)
    profile.refresh_from_db()
    if expected is None:
        assert logs == []
        assert notifier.raw() == []
        assert profile.last_long_break_reminder_type_sent == last_type
        assert profile.last_long_break_reminder_sent_at == (
            None if since_sent is None else NOW - since_sent
        )
        return
    [log] = logs
    assert log.notification_type == "long_break_reminder"
    assert log.status == NotificationStatus.ENQUEUED
    assert log.metadata == {"reminder_type": expected, "days_inactive": days}
    assert log.context == {"last_exercise_at": (NOW - days * D).isoformat()}
    assert (
        log.dedupe_key == f"long_break:{profile.pk}:{expected}:{int((NOW - days * D).timestamp())}"
    )
    assert log.text.endswith("\n\n/next")
    assert log.reply_markup is None
    assert profile.last_long_break_reminder_type_sent == expected
    assert profile.last_long_break_reminder_sent_at == NOW
    [task] = notifier.task_dicts()
    assert task["task_id"] == str(log.task_id)
    assert task["metadata"] == {"reminder_type": expected, "days_inactive": days}
    assert stats["long_break_reminders"]["enqueued"] == 1
    assert stats["long_break_reminders"]["written"] == 1


def test_no_last_exercise_is_never_a_candidate(notifier, run):
    profile = long_break_profile(inactive=None)

    run()

    assert logs_of(profile) == []


@pytest.mark.parametrize(
    ("step", "key"),
    [
        ("3d", "long_break_3d"),
        ("5d", "long_break_5d"),
        ("8d", "long_break_8d"),
        ("13d", "long_break_13d"),
        ("21d", "long_break_21d"),
        ("30d", "long_break_30d"),
        ("90d", "long_break_final"),
    ],
)
def test_each_step_has_its_text_in_the_profile_language(notifier, run, step, key):
    days = int(step[:-1])
    profile = long_break_profile(inactive=days * D, user_language="ru")
    if step != "3d":  # start right before the step
        previous = ["1d", "3d", "5d", "8d", "13d", "21d", "30d", "90d"]
        BotProfile.objects.filter(pk=profile.pk).update(
            last_long_break_reminder_type_sent=previous[previous.index(step) - 1],
            last_long_break_reminder_sent_at=NOW - 48 * H,
        )

    run()

    [log] = logs_of(profile)
    assert log.text == render(key, "ru") + "\n\n/next"
    assert log.metadata["reminder_type"] == step


def test_the_first_step_celebrates_a_streak(notifier, run):
    streak = long_break_profile(inactive=1 * D, current_streak_days=6)
    plain = long_break_profile(inactive=1 * D, current_streak_days=1)

    run()

    [streak_log] = logs_of(streak)
    [plain_log] = logs_of(plain)
    variants = {render(f"long_break_1d_streak_{n}", "en", streak_days=6) for n in range(1, 5)}
    assert streak_log.text.removesuffix("\n\n/next") in variants
    assert "6" in streak_log.text
    assert plain_log.text == render("long_break_1d", "en") + "\n\n/next"


def test_the_third_day_says_held_streak_freezes_still_cover_the_missed_days(notifier, run):
    covered = long_break_profile(inactive=3 * D, current_streak_days=12, streak_freezes=2)
    short = long_break_profile(inactive=3 * D, current_streak_days=12, streak_freezes=1)

    run()

    [covered_log] = logs_of(covered)
    [short_log] = logs_of(short)
    held = render("streak_freeze_held", "en", freezes=2, streak_days=12)
    assert covered_log.text == render("long_break_3d", "en") + "\n\n" + held + "\n\n/next"
    assert short_log.text == render("long_break_3d", "en") + "\n\n/next"


def test_blocked_and_inactive_profiles_get_no_reminders(notifier, run):
    blocked = long_break_profile(inactive=3 * D, status=ProfileStatus.BLOCKED)
    inactive = long_break_profile(inactive=3 * D, status=ProfileStatus.INACTIVE)
    frozen = {
        "session_frozen_until": NOW - 60 * timedelta(seconds=1),
        "wants_session_reminders": True,
    }
    blocked_session = BotProfileFactory(status=ProfileStatus.BLOCKED, **frozen)
    inactive_session = BotProfileFactory(status=ProfileStatus.INACTIVE, **frozen)

    run()

    for profile in (blocked, inactive, blocked_session, inactive_session):
        assert logs_of(profile) == []
    assert notifier.raw() == []


def test_an_overlapping_run_that_already_enqueued_the_step_means_nothing(notifier, run):
    profile = long_break_profile(inactive=3 * D, last_type="1d", since_sent=48 * H)
    key = f"long_break:{profile.pk}:3d:{int((NOW - 3 * D).timestamp())}"
    NotificationLogFactory(
        user=profile.user, dedupe_key=key, status=NotificationStatus.ENQUEUED, attempts=1
    )

    stats = run()

    assert len(logs_of(profile)) == 1
    assert notifier.raw() == []
    assert stats["long_break_reminders"]["duplicates"] == 1
    profile.refresh_from_db()
    assert profile.last_long_break_reminder_type_sent == "1d"  # the dedupe key stopped it


# --- B. the time-of-day window -----------------------------------------------------------------

MIDNIGHT = datetime(2025, 7, 10, 0, 5, tzinfo=UTC)


def midnight_profile(*, last_practice: datetime) -> BotProfile:
    return BotProfileFactory(
        last_exercise_at=last_practice,
        last_long_break_reminder_type_sent="1d",
        last_long_break_reminder_sent_at=MIDNIGHT - 48 * H,
    )


def test_the_window_crosses_midnight(notifier, run):
    """Last practice 23:55 UTC three days ago, now 00:05 UTC, `1d` sent 48 h ago → `3d`."""
    before_midnight = midnight_profile(last_practice=datetime(2025, 7, 6, 23, 55, tzinfo=UTC))
    after_midnight = midnight_profile(last_practice=datetime(2025, 7, 7, 0, 4, tzinfo=UTC))
    lower_edge = midnight_profile(last_practice=datetime(2025, 7, 6, 23, 50, tzinfo=UTC))
    below = midnight_profile(last_practice=datetime(2025, 7, 6, 23, 49, 59, tzinfo=UTC))
    upper_edge = midnight_profile(last_practice=datetime(2025, 7, 5, 0, 20, tzinfo=UTC))
    above = midnight_profile(last_practice=datetime(2025, 7, 5, 0, 20, 1, tzinfo=UTC))
    far = midnight_profile(last_practice=datetime(2025, 7, 6, 12, 5, tzinfo=UTC))

    run(MIDNIGHT)

    assert [log.metadata for log in logs_of(before_midnight)] == [
        {"reminder_type": "3d", "days_inactive": 3}
    ]
    for profile in (after_midnight, lower_edge, upper_edge):
        assert [log.metadata["reminder_type"] for log in logs_of(profile)] == ["3d"]
    for profile in (below, above, far):
        assert logs_of(profile) == []


def test_the_window_after_midnight_matches_early_practice(notifier, run):
    now = datetime(2025, 7, 10, 23, 58, tzinfo=UTC)
    early = BotProfileFactory(last_exercise_at=datetime(2025, 7, 5, 0, 10, tzinfo=UTC))

    run(now)

    assert [log.metadata["reminder_type"] for log in logs_of(early)] == ["5d"]


@contextmanager
def database_session_time_zone(name: str | None) -> Iterator[None]:
    """The DB session in time zone `name`, as a `DATABASES[...]["TIME_ZONE"]` would set it.

    Django reads `timestamptz` values in the connection's zone, so the zone is changed the way
    Django knows about (a bare `SET TIME ZONE` behind its back would garble every value read).
    """

    wrapper = connections[DEFAULT_DB_ALIAS]  # not the `connection` proxy: its cached properties

    def apply(zone: str | None) -> None:
        wrapper.settings_dict["TIME_ZONE"] = zone
        for cached in ("timezone", "timezone_name"):
            wrapper.__dict__.pop(cached, None)
        wrapper.ensure_timezone()

    original = wrapper.settings_dict["TIME_ZONE"]
    apply(name)
    try:
        yield
    finally:
        apply(original)


def test_the_db_session_time_zone_does_not_change_the_result(notifier, run):
    """The same midnight case with the DB session in Europe/Sofia (UTC+3 in July)."""
    profile = midnight_profile(last_practice=datetime(2025, 7, 6, 23, 55, tzinfo=UTC))
    in_sofia_window = midnight_profile(last_practice=datetime(2025, 7, 6, 21, 0, tzinfo=UTC))

    with database_session_time_zone("Europe/Sofia"):
        with connection.cursor() as cursor:
            cursor.execute("SHOW TIME ZONE")
            assert cursor.fetchone()[0] == "Europe/Sofia"
        run(MIDNIGHT)

    with connection.cursor() as cursor:
        cursor.execute("SHOW TIME ZONE")
        assert cursor.fetchone()[0] == "UTC"
    assert [log.metadata for log in logs_of(profile)] == [
        {"reminder_type": "3d", "days_inactive": 3}
    ]
    # 21:00 UTC is 00:00 in Sofia: a session-zone comparison would have matched it.
    assert logs_of(in_sofia_window) == []
    [log] = logs_of(profile)
    assert log.context == {"last_exercise_at": "2025-07-06T23:55:00+00:00"}
    profile.refresh_from_db()
    assert profile.last_long_break_reminder_type_sent == "3d"


def test_the_window_is_plus_minus_half_its_width(notifier, run, settings):
    settings.LONG_BREAK_REMINDER_TIME_WINDOW_SECONDS = 1800

    def practised(minutes: int) -> BotProfile:
        return BotProfileFactory(last_exercise_at=NOW - 5 * D + timedelta(minutes=minutes))

    inside = [practised(minutes) for minutes in (-15, 0, 15)]
    outside = [practised(minutes) for minutes in (-16, 16)]

    run()

    assert [len(logs_of(profile)) for profile in inside] == [1, 1, 1]
    assert [len(logs_of(profile)) for profile in outside] == [0, 0]


def test_long_break_step_rules():
    last = NOW - 3 * D
    assert (
        long_break_step(now=NOW, last_exercise_at=None, last_type_sent=None, last_sent_at=None)
        is None
    )
    assert (
        long_break_step(now=NOW, last_exercise_at=last, last_type_sent=None, last_sent_at=None)
        == "3d"
    )
    assert (
        long_break_step(
            now=NOW, last_exercise_at=last, last_type_sent="1d", last_sent_at=NOW - 47 * H
        )
        == "3d"
    )
    assert (
        long_break_step(
            now=NOW,
            last_exercise_at=last,
            last_type_sent="1d",
            last_sent_at=NOW - 47 * H + timedelta(seconds=1),
        )
        is None
    )
    assert (
        long_break_step(
            now=NOW, last_exercise_at=NOW - 200 * D, last_type_sent="90d", last_sent_at=None
        )
        is None
    )


# --- B. a stale copy never overwrites a served exercise ------------------------------------------


def test_a_stale_candidate_does_not_overwrite_a_served_exercise(
    notifier, django_capture_on_commit_callbacks
):
    profile = long_break_profile(inactive=3 * D, last_type="1d", since_sent=48 * H)
    stale = profiles_due_for_long_break(now=NOW)
    assert [candidate.profile_id for candidate in stale] == [profile.pk]
    for _ in range(3):
        ExerciseFactory()
    served_at = NOW + timedelta(seconds=30)
    action = profile_next_action(user_id=profile.user_id, bot_id=profile.bot_id, now=served_at)
    assert action.action == "new_exercise"

    with django_capture_on_commit_callbacks(execute=True):
        stats = long_break_reminders_deliver(candidates=stale, now=NOW, dry_run=False)

    profile.refresh_from_db()
    assert profile.last_exercise_at == served_at
    assert profile.exercises_get_in_session == 1
    assert profile.exercises_get_in_set == 1
    assert profile.last_long_break_reminder_type_sent is None
    assert profile.last_long_break_reminder_sent_at is None
    assert stats["enqueued"] == 1
    assert stats["written"] == 0
    # The message went out, but the Notifier's relevance check will drop it.
    [log] = logs_of(profile)
    assert not notification_is_relevant(
        task_id=str(log.task_id), user_id=profile.user_id, bot_id=profile.bot_id, now=served_at
    )


def test_the_follow_up_writes_only_profiles_still_as_read():
    read = NOW - 3 * D
    unchanged = long_break_profile(inactive=3 * D, last_type="1d", since_sent=48 * H)
    served = long_break_profile(inactive=3 * D, last_type="1d", since_sent=48 * H)
    BotProfile.objects.filter(pk=served.pk).update(
        last_exercise_at=NOW, last_long_break_reminder_type_sent=None
    )
    other_step = long_break_profile(inactive=60 * D)
    before = BotProfile.objects.get(pk=unchanged.pk).updated_at

    written = profiles_mark_long_break_sent(
        sent=[
            (unchanged.pk, read, "3d"),
            (served.pk, read, "3d"),
            (other_step.pk, NOW - 60 * D, "30d"),
        ],
        now=NOW,
    )

    assert written == 2
    rows = {
        row[0]: row[1:]
        for row in BotProfile.objects.values_list(
            "pk",
            "last_long_break_reminder_type_sent",
            "last_long_break_reminder_sent_at",
            "last_exercise_at",
        )
    }
    assert rows[unchanged.pk] == ("3d", NOW, read)
    assert rows[served.pk] == (None, NOW - 48 * H, NOW)
    assert rows[other_step.pk] == ("30d", NOW, NOW - 60 * D)
    assert BotProfile.objects.get(pk=unchanged.pk).updated_at == before


# --- A. session reminders: cases ------------------------------------------------------------------

MINUTE = timedelta(minutes=1)


@pytest.mark.parametrize(
    ("wants", "frozen_ago", "expected"),
    [
        (True, 1 * MINUTE, True),
        (False, 1 * MINUTE, False),
        (None, 1 * MINUTE, False),
        (True, -1 * MINUTE, False),  # still frozen
        (True, None, False),
        (True, 20 * MINUTE, False),  # outside the 15 min lookback
        (True, 10 * MINUTE, True),  # the previous cycle was missed
        (True, 15 * MINUTE, False),  # the lookback is (now − 900 s, now]
        (True, 0 * MINUTE, True),
    ],
)
def test_the_session_reminder_table(notifier, run, wants, frozen_ago, expected):
    frozen_until = None if frozen_ago is None else NOW - frozen_ago
    profile = BotProfileFactory(
        session_frozen_until=frozen_until, wants_session_reminders=wants, user_language="bg"
    )

    run()

    logs = logs_of(profile)
    if not expected:
        assert logs == []
        assert notifier.raw() == []
        return
    [log] = logs
    assert log.notification_type == "session_reminder"
    assert log.text == render("session_is_ready", "bg") + "\n\n/next"
    assert log.metadata == {}
    assert log.reply_markup is None
    assert log.context == {"session_frozen_until": frozen_until.isoformat()}
    assert log.dedupe_key == f"session_reminder:{profile.pk}:{int(frozen_until.timestamp())}"
    assert log.status == NotificationStatus.ENQUEUED
    assert notification_is_relevant(
        task_id=str(log.task_id), user_id=profile.user_id, bot_id=profile.bot_id, now=NOW
    )
    profile.refresh_from_db()
    assert profile.wants_session_reminders is True  # not written (Compat)
    assert len(notifier.raw()) == 1


def test_one_session_reminder_per_freeze_across_cycles(notifier, run):
    profile = BotProfileFactory(session_frozen_until=NOW - MINUTE, wants_session_reminders=True)

    run(NOW)
    run(NOW + timedelta(minutes=5))
    run(NOW + timedelta(minutes=10))

    assert len(logs_of(profile)) == 1
    assert len(notifier.raw()) == 1


# --- C. detailed-report delivery -----------------------------------------------------------------


def generated_report(*, ago: timedelta, status: str = ReportStatus.GENERATED, **profile_fields):
    profile = BotProfileFactory(**profile_fields)
    return WeeklyReportFactory(
        user=profile.user,
        bot_id=profile.bot_id,
        status=status,
        full_report="<b>Your detailed report</b>",
        full_generated_at=NOW - ago,
        short_notified_at=NOW - 2 * D,
    )


def test_a_detailed_report_is_delivered_after_the_delay_and_marked_sent(notifier, run):
    report = generated_report(ago=timedelta(seconds=600), user_language="uk")
    too_early = generated_report(ago=timedelta(seconds=599))

    stats = run()

    [log] = NotificationLog.objects.filter(user_id=report.user_id)
    assert log.notification_type == "weekly_report"
    assert log.is_full_report is True
    assert log.text == "<b>Your detailed report</b>"
    assert log.reply_markup == {
        "inline_keyboard": [
            [
                {
                    "text": render("report_donation_button_text", "uk"),
                    "callback_data": f"initiate_payment:report_donation:{report.pk}",
                }
            ]
        ]
    }
    assert log.metadata == {"report_id": report.pk, "is_full_report": True}
    assert log.context == {"report_id": report.pk}
    assert log.dedupe_key == f"weekly_report_full:{report.pk}"
    report.refresh_from_db()
    assert report.status == ReportStatus.SENT
    assert report.full_sent_at == NOW
    assert report.status_changed_at == NOW
    too_early.refresh_from_db()
    assert too_early.status == ReportStatus.GENERATED
    assert not NotificationLog.objects.filter(user_id=too_early.user_id).exists()
    [task] = notifier.task_dicts()
    assert task["payload"]["reply_markup"] == log.reply_markup
    assert stats["full_reports"]["written"] == 1
    assert notification_is_relevant(
        task_id=str(log.task_id), user_id=report.user_id, bot_id=report.bot_id, now=NOW
    )


def test_reports_of_inactive_profiles_or_without_text_are_not_delivered(notifier, run):
    blocked = generated_report(ago=H)
    BotProfile.objects.filter(user_id=blocked.user_id).update(status=ProfileStatus.BLOCKED)
    empty = generated_report(ago=H)
    WeeklyReport.objects.filter(pk=empty.pk).update(full_report="")
    pending = generated_report(ago=H, status=ReportStatus.GENERATING)

    run()

    assert not NotificationLog.objects.exists()
    for report in (blocked, empty, pending):
        report.refresh_from_db()
        assert report.status != ReportStatus.SENT


def test_a_failed_enqueue_leaves_the_report_generated_and_the_next_cycle_retries(
    notifier, run, settings
):
    report = generated_report(ago=H)
    broker = settings.CELERY_BROKER_URL
    settings.CELERY_BROKER_URL = DEAD_BROKER

    run()

    [log] = NotificationLog.objects.all()
    assert (log.status, log.attempts) == (NotificationStatus.FAILED, 1)
    report.refresh_from_db()
    assert report.status == ReportStatus.GENERATED

    settings.CELERY_BROKER_URL = broker
    run(NOW + timedelta(minutes=5))

    [retried] = NotificationLog.objects.all()
    assert retried.pk == log.pk
    assert retried.task_id == log.task_id
    assert (retried.status, retried.attempts) == (NotificationStatus.ENQUEUED, 2)
    report.refresh_from_db()
    assert report.status == ReportStatus.SENT
    assert [task["task_id"] for task in notifier.task_dicts()] == [str(log.task_id)]


# --- D. short-report catch-up --------------------------------------------------------------------


def short_report(*, created_ago: timedelta, **fields: Any) -> WeeklyReport:
    profile = BotProfileFactory(user_language="tr")
    return WeeklyReportFactory(
        user=profile.user,
        bot_id=profile.bot_id,
        short_report="Your week in numbers",
        generated_at=NOW - created_ago,
        **fields,
    )


def test_short_reports_never_announced_are_caught_up(notifier, run):
    missed = short_report(created_ago=1 * D)
    old = short_report(created_ago=2 * D + MINUTE)
    announced = short_report(created_ago=H, short_notified_at=NOW - 30 * MINUTE)

    stats = run()

    [log] = NotificationLog.objects.all()
    assert log.user_id == missed.user_id
    assert log.dedupe_key == f"weekly_report_short:{missed.pk}"
    assert log.text == "Your week in numbers"
    assert log.is_full_report is False
    assert log.metadata == {"report_id": missed.pk}
    assert log.context == {"report_id": missed.pk}
    assert log.reply_markup == {
        "inline_keyboard": [
            [
                {
                    "text": render("weekly_report_detailed_button", "tr"),
                    "callback_data": f"full_weekly_report:yes:{missed.pk}",
                }
            ]
        ]
    }
    missed.refresh_from_db()
    assert missed.short_notified_at == NOW
    old.refresh_from_db()
    assert old.short_notified_at is None
    announced.refresh_from_db()
    assert announced.short_notified_at == NOW - 30 * MINUTE
    assert stats["short_report_catch_up"]["written"] == 1
    assert len(notifier.raw()) == 1


def test_the_catch_up_waits_while_the_weekly_job_runs(notifier, run):
    missed = short_report(created_ago=MINUTE)
    JobLock.objects.create(
        name="weekly_reports", owner="host:1:task", acquired_at=NOW - MINUTE, locked_until=NOW + H
    )

    stats = run()

    assert stats["short_report_catch_up"] == {"paused": "weekly_reports is running"}
    assert not NotificationLog.objects.exists()
    JobLock.objects.all().delete()
    run(NOW + timedelta(minutes=5))
    missed.refresh_from_db()
    assert missed.short_notified_at == NOW + timedelta(minutes=5)


# --- idempotency, stuck rows, dry run ------------------------------------------------------------


def everything_due(n: int, *, now: datetime = NOW) -> None:
    """`n` items due in each part at `now`."""
    for _ in range(n):
        BotProfileFactory(session_frozen_until=now - MINUTE, wants_session_reminders=True)
        BotProfileFactory(
            last_exercise_at=now - 3 * D,
            last_long_break_reminder_type_sent="1d",
            last_long_break_reminder_sent_at=now - 48 * H,
        )
        profile = BotProfileFactory()
        WeeklyReportFactory(
            user=profile.user,
            bot_id=profile.bot_id,
            status=ReportStatus.GENERATED,
            full_report="Detailed",
            full_generated_at=now - H,
            short_notified_at=now - H,
            generated_at=now - 3 * D,
        )
        profile = BotProfileFactory()
        WeeklyReportFactory(user=profile.user, bot_id=profile.bot_id, generated_at=now - H)


def test_running_twice_sends_nothing_twice_and_writes_fields_once(notifier, run):
    everything_due(2)

    first = run()
    state = {
        "profiles": list(
            BotProfile.objects.order_by("pk").values_list(
                "pk", "last_long_break_reminder_type_sent", "last_long_break_reminder_sent_at"
            )
        ),
        "reports": list(
            WeeklyReport.objects.order_by("pk").values_list(
                "pk", "status", "full_sent_at", "short_notified_at", "status_changed_at"
            )
        ),
    }
    logs = list(NotificationLog.objects.order_by("pk").values_list("pk", "status", "attempts"))
    with CaptureQueriesContext(connection) as queries:
        second = run(NOW)  # e.g. a forced re-run of the same cycle
        third = run(NOW + timedelta(minutes=5))

    assert len(logs) == 8
    assert {status for _, status, _ in logs} == {"enqueued"}
    assert len(notifier.raw()) == 8
    assert (
        list(NotificationLog.objects.order_by("pk").values_list("pk", "status", "attempts")) == logs
    )
    assert state["profiles"] == list(
        BotProfile.objects.order_by("pk").values_list(
            "pk", "last_long_break_reminder_type_sent", "last_long_break_reminder_sent_at"
        )
    )
    assert state["reports"] == list(
        WeeklyReport.objects.order_by("pk").values_list(
            "pk", "status", "full_sent_at", "short_notified_at", "status_changed_at"
        )
    )
    writes = [
        q["sql"] for q in queries.captured_queries if re.match(r"\s*(UPDATE|INSERT)", q["sql"])
    ]
    assert not [sql for sql in writes if "learning_" in sql.split(" SET ")[0]]
    assert not [sql for sql in writes if "INSERT" in sql and "notifications_notificationlog" in sql]
    assert first["session_reminders"]["enqueued"] == 2
    assert first["long_break_reminders"]["enqueued"] == 2
    assert first["full_reports"]["enqueued"] == 2
    assert first["short_report_catch_up"]["enqueued"] == 2
    assert second["session_reminders"]["duplicates"] == 2
    assert third["session_reminders"]["duplicates"] == 2
    assert second["long_break_reminders"]["candidates"] == 0  # cooldown


def test_a_stuck_pending_row_is_failed_then_resent_by_its_part(notifier, run):
    profile = BotProfileFactory(session_frozen_until=NOW - MINUTE, wants_session_reminders=True)
    key = f"session_reminder:{profile.pk}:{int((NOW - MINUTE).timestamp())}"
    stuck = NotificationLogFactory(
        user=profile.user, dedupe_key=key, created_at=NOW - timedelta(minutes=11)
    )

    stats = run()

    assert stats["stuck_marked_failed"] == 1
    assert stats["session_reminders"]["retried"] == 1
    stuck.refresh_from_db()
    assert (stuck.status, stuck.attempts) == (NotificationStatus.ENQUEUED, 2)
    assert [task["task_id"] for task in notifier.task_dicts()] == [str(stuck.task_id)]


def test_a_dry_run_writes_and_sends_nothing(notifier, run):
    everything_due(3)
    NotificationLogFactory(created_at=NOW - H)  # stuck

    stats = run(dry_run=True)

    assert NotificationLog.objects.count() == 1
    assert NotificationLog.objects.get().status == NotificationStatus.PENDING
    assert notifier.raw() == []
    assert stats["stuck_pending"] == 1
    for part in PARTS:
        assert stats[part]["would_send"] == 3
        assert len(stats[part]["sample"]) == 3
    assert not BotProfile.objects.filter(last_long_break_reminder_type_sent="3d").exists()
    assert not WeeklyReport.objects.filter(status=ReportStatus.SENT).exists()


# --- sends only after commit; a rollback sends nothing --------------------------------------------


def test_send_task_is_called_only_in_an_on_commit_callback(
    notifier, django_capture_on_commit_callbacks
):
    everything_due(1)

    with django_capture_on_commit_callbacks() as callbacks:
        notification_scheduler(now=NOW, dry_run=False)

    assert len(callbacks) == 4  # one batch per part
    assert notifier.raw() == []
    assert set(NotificationLog.objects.values_list("status", flat=True)) == {"pending"}
    for callback in callbacks:
        callback()
    assert set(NotificationLog.objects.values_list("status", flat=True)) == {"enqueued"}
    assert len(notifier.raw()) == 4


def test_a_rolled_back_job_transaction_sends_nothing_and_leaves_no_row(
    notifier, django_capture_on_commit_callbacks
):
    BotProfileFactory(session_frozen_until=NOW - MINUTE, wants_session_reminders=True)

    prepared: list[dict[str, Any]] = []

    def job() -> None:
        with transaction.atomic():
            prepared.append(session_reminders_send(now=NOW, dry_run=False))
            raise RuntimeError("rolled back")

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
    ):
        job()

    assert prepared[0]["new"] == 1

    assert callbacks == []
    assert not NotificationLog.objects.exists()
    assert notifier.raw() == []


# --- queries do not grow with the number of candidates --------------------------------------------


PARTS = ("session_reminders", "long_break_reminders", "full_reports", "short_report_catch_up")


def _cycle_queries(run, now: datetime) -> int:
    with CaptureQueriesContext(connection) as queries:
        stats = run(now)
    assert [stats[part]["enqueued"] for part in PARTS] == [10, 10, 10, 10]
    return len(queries)


def test_the_query_count_is_the_same_for_10_and_100_eligible_items(
    notifier, run, django_assert_max_num_queries
):
    everything_due(10)
    small = _cycle_queries(run, NOW)
    later = NOW + D  # the first batch is then past its lookback, in cooldown, or sent
    everything_due(100, now=later)

    with django_assert_max_num_queries(small):
        stats = run(later)

    assert [stats[part]["enqueued"] for part in PARTS] == [100, 100, 100, 100]
    assert NotificationLog.objects.filter(status=NotificationStatus.ENQUEUED).count() == 440
    assert len(notifier.raw()) == 440


# --- the job ------------------------------------------------------------------------------------


def test_the_job_is_registered_as_specified():
    job = JOBS["notification_scheduler"]

    assert job.body == lazy_body("notifications.scheduler.notification_scheduler")
    assert job.task == "notifications.notification_scheduler"
    assert (job.soft_time_limit, job.time_limit, job.lock_ttl) == (240, 280, 340)
    assert job.interval_seconds() == 300
    assert job.period_key(datetime(2025, 7, 1, 12, 14, tzinfo=UTC)) == "2025-07-01T12:10Z"


def test_the_runner_runs_the_job_and_records_its_stats(
    notifier, django_capture_on_commit_callbacks
):
    everything_due(1)

    with django_capture_on_commit_callbacks(execute=True):
        outcome = job_run("notification_scheduler", now=NOW)

    assert outcome.outcome == Outcome.SUCCEEDED
    run = JobRun.objects.get(job="notification_scheduler")
    assert run.period_key == "2025-07-09T12:00Z"
    assert run.stats["long_break_reminders"]["steps"] == {"3d": 1}
    assert len(notifier.raw()) == 4


def test_one_failing_part_does_not_stop_the_others(notifier, run, monkeypatch):
    everything_due(1)

    def broken(*, now, dry_run):
        raise RuntimeError("selector exploded")

    monkeypatch.setitem(scheduler.PARTS, "session_reminders", broken)

    with pytest.raises(NotificationSchedulerError, match="session_reminders: RuntimeError"):
        run()

    assert NotificationLog.objects.filter(status=NotificationStatus.ENQUEUED).count() == 3
    assert len(notifier.raw()) == 3
