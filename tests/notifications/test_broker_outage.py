"""A broker outage loses no notification (issue 10 item 17).

The scheduler runs every 5 minutes on a simulated clock while the Notifier's queue is unreachable
(the producer points at a closed port), then the broker returns. A notification is given up only
when it is no longer relevant (relevance.py), never because the broker was down; the follow-up
writes happen when it is finally sent; each attempt's message carries the time of that attempt.
Messages are read back from the Notifier queue in the real Redis.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils.dateparse import parse_datetime

from duoniche.enums import NotificationStatus, ProfileStatus, ReportStatus
from learning.models import BotProfile, WeeklyReport
from notifications.models import NotificationLog
from notifications.scheduler import notification_scheduler
from tests.learning.factories import BotProfileFactory, WeeklyReportFactory
from tests.notifications.test_producer import DEAD_BROKER, NotifierQueue
from tests.notifications.test_scheduler import NOW

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.filterwarnings("ignore::celery.exceptions.AlwaysEagerIgnored"),
]

CYCLE = timedelta(minutes=5)
OUTAGE = timedelta(hours=1)


@pytest.fixture
def notifier(settings) -> Iterator[NotifierQueue]:
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.NOTIFICATION_TASKS_QUEUE_NAME = f"notification_tasks_test_{uuid.uuid4().hex[:12]}"
    queue = NotifierQueue(settings.CELERY_BROKER_URL, settings.NOTIFICATION_TASKS_QUEUE_NAME)
    queue.raw()
    try:
        yield queue
    finally:
        queue.close()


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    def run(now: datetime) -> dict[str, Any]:
        with django_capture_on_commit_callbacks(execute=True):
            return notification_scheduler(now=now, dry_run=False)

    return run


def _due_everywhere() -> dict[str, Any]:
    """One item due at NOW in each part, plus two that stop being relevant during the outage."""

    def session_profile() -> BotProfile:
        return BotProfileFactory(
            session_frozen_until=NOW - timedelta(minutes=1), wants_session_reminders=True
        )

    def long_break_profile() -> BotProfile:
        return BotProfileFactory(
            last_exercise_at=NOW - timedelta(days=3, minutes=2),
            last_long_break_reminder_type_sent="1d",
            last_long_break_reminder_sent_at=NOW - timedelta(hours=48),
        )

    full_profile = BotProfileFactory()
    short_profile = BotProfileFactory(bot_id="Serbian", user_language="sr")
    return {
        "session": session_profile(),
        "long_break": long_break_profile(),
        "full": WeeklyReportFactory(
            user=full_profile.user,
            bot_id=full_profile.bot_id,
            status=ReportStatus.GENERATED,
            full_report="<b>Detailed</b> report",
            full_generated_at=NOW - timedelta(minutes=11),
            short_notified_at=NOW - timedelta(days=1),
        ),
        "short": WeeklyReportFactory(
            user=short_profile.user,
            bot_id="Serbian",
            short_report="Your week in numbers",
            generated_at=NOW - timedelta(hours=1),
        ),
        # Blocks the bot during the outage.
        "blocked": session_profile(),
        # Practises again during the outage (what serving an exercise writes).
        "practised": long_break_profile(),
    }


def _created_at(task: dict[str, Any]) -> datetime:
    envelope = task["created_at"]
    assert envelope["__type__"] == "datetime"
    moment = parse_datetime(envelope["__value__"])
    assert moment is not None
    return moment


def test_a_one_hour_outage_loses_nothing_and_sends_each_notification_once(notifier, run, settings):
    items = _due_everywhere()
    broker = settings.CELERY_BROKER_URL
    settings.CELERY_BROKER_URL = DEAD_BROKER

    now = NOW
    while now <= NOW + OUTAGE:
        run(now)
        if now == NOW + timedelta(minutes=30):
            BotProfile.objects.filter(pk=items["blocked"].pk).update(status=ProfileStatus.BLOCKED)
            BotProfile.objects.filter(pk=items["practised"].pk).update(
                last_exercise_at=now,
                last_long_break_reminder_type_sent=None,
                last_long_break_reminder_sent_at=None,
            )
        now += CYCLE

    logs = {log.user_id: log for log in NotificationLog.objects.all()}
    assert len(logs) == 6  # one row per item, whatever the number of runs
    for name in ("session", "long_break", "full", "short"):
        log = logs[items[name].user_id]
        # Still waiting for a retry: not given up, not sent.
        assert log.status == NotificationStatus.FAILED, name
        assert log.next_attempt_at is not None, name
        assert log.next_attempt_at > NOW + OUTAGE, name
    assert notifier.raw() == []
    # No follow-up write happened while nothing was sent.
    full = WeeklyReport.objects.get(pk=items["full"].pk)
    assert (full.status, full.full_sent_at) == (ReportStatus.GENERATED, None)
    assert WeeklyReport.objects.get(pk=items["short"].pk).short_notified_at is None
    long_break = BotProfile.objects.get(pk=items["long_break"].pk)
    assert long_break.last_long_break_reminder_type_sent == "1d"
    assert long_break.last_long_break_reminder_sent_at == NOW - timedelta(hours=48)

    # The broker is back: runs go on every 5 minutes for three more hours.
    settings.CELERY_BROKER_URL = broker
    received: dict[str, list[tuple[datetime, dict[str, Any]]]] = {}
    while now <= NOW + 4 * OUTAGE:
        run(now)
        for task in notifier.task_dicts():
            received.setdefault(task["task_id"], []).append((now, task))
        now += CYCLE

    sent_at: dict[str, datetime] = {}
    for name in ("session", "long_break", "full", "short"):
        log = NotificationLog.objects.get(user_id=items[name].user_id)
        assert log.status == NotificationStatus.ENQUEUED, name
        [(run_at, task)] = received[str(log.task_id)]  # exactly once
        assert _created_at(task) == run_at, name  # the time of this attempt, not of the first
        assert log.enqueued_at == run_at, name
        sent_at[name] = run_at
    assert len(received) == 4

    full = WeeklyReport.objects.get(pk=items["full"].pk)
    assert full.status == ReportStatus.SENT
    assert full.full_sent_at == full.status_changed_at == sent_at["full"]
    short = WeeklyReport.objects.get(pk=items["short"].pk)
    assert short.short_notified_at == sent_at["short"]
    long_break = BotProfile.objects.get(pk=items["long_break"].pk)
    assert long_break.last_long_break_reminder_type_sent == "3d"
    assert long_break.last_long_break_reminder_sent_at == sent_at["long_break"]

    # No longer relevant: given up, never sent, and the profile that practised is not written.
    for name in ("blocked", "practised"):
        log = NotificationLog.objects.get(user_id=items[name].user_id)
        assert log.status == NotificationStatus.SKIPPED, name
        assert log.error == "no longer relevant", name
        assert str(log.task_id) not in received
    practised = BotProfile.objects.get(pk=items["practised"].pk)
    assert practised.last_long_break_reminder_type_sent is None
    assert practised.last_long_break_reminder_sent_at is None


def test_a_notification_older_than_the_retry_age_is_given_up(notifier, run, settings):
    items = _due_everywhere()
    broker = settings.CELERY_BROKER_URL
    settings.CELERY_BROKER_URL = DEAD_BROKER
    run(NOW)
    settings.CELERY_BROKER_URL = broker

    later = NOW + timedelta(seconds=settings.NOTIFICATION_RETRY_MAX_AGE_SECONDS + 1)
    run(later)

    assert set(
        NotificationLog.objects.filter(user_id__in=[item.user_id for item in items.values()])
        .values_list("status", "error")
        .distinct()
    ) == {(NotificationStatus.SKIPPED, "too old")}
    assert notifier.raw() == []
    assert WeeklyReport.objects.get(pk=items["full"].pk).status == ReportStatus.GENERATED


class BlackHole:
    """A TCP server that accepts connections and never answers (a hung broker)."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(64)
        self.port = self.server.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self.server.settimeout(0.1)
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self.server.accept()
            except OSError:
                continue
            self.accepted.append(connection)

    def close(self) -> None:
        self._stop.set()
        self.thread.join(5)
        for connection in self.accepted:
            connection.close()
        self.server.close()


@pytest.fixture
def black_hole() -> Iterator[BlackHole]:
    hole = BlackHole()
    try:
        yield hole
    finally:
        hole.close()


@pytest.mark.parametrize("hung", [False, True], ids=["closed-port", "black-hole"])
def test_publishing_to_a_down_broker_fails_fast(notifier, run, settings, black_hole, hung):
    settings.NOTIFICATION_PUBLISH_TIMEOUT_SECONDS = 0.5
    items = _due_everywhere()
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{black_hole.port}/0" if hung else DEAD_BROKER

    started = time.monotonic()
    stats = run(NOW)
    elapsed = time.monotonic() - started

    # Bounded: a socket timeout and a bounded retry per message, not a hang (today: forever).
    assert elapsed < 20
    assert stats["session_reminders"]["failed"] == 2
    log = NotificationLog.objects.get(user_id=items["session"].user_id)
    assert log.status == NotificationStatus.FAILED
    assert log.error.startswith("celery_send_error")
