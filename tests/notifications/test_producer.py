"""The Notifier producer (docs/notifier.md): log rows, on-commit sends, retries.

Sends go to the real Redis of the test settings, on a queue of the test's own (`notifier` fixture),
read back with kombu; without the fixture the settings are eager, i.e. the producer is disabled.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from queue import Empty
from typing import Any

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext
from kombu import Connection
from prometheus_client import REGISTRY

from duoniche.enums import NotificationStatus, NotificationType
from notifications.models import NotificationLog
from notifications.producer import (
    NotificationDraft,
    notification_fail_stuck,
    notification_prepare,
    notification_prepare_many,
    notification_send,
)
from notifications.publishing import NOTIFIER_TASK_NAME
from tests.learning.factories import TelegramUserFactory
from tests.notifications.factories import NotificationLogFactory

pytestmark = [
    pytest.mark.django_db,
    # The test settings are eager (for the app's own tasks); `send_task` still publishes.
    pytest.mark.filterwarnings("ignore::celery.exceptions.AlwaysEagerIgnored"),
]

NOW = datetime(2025, 7, 7, 9, 0, 0, 123456, tzinfo=UTC)
DEAD_BROKER = "redis://127.0.0.1:1/0"


class NotifierQueue:
    """A Notifier queue of our own on the test Redis: what the external Notifier would consume."""

    def __init__(self, url: str, name: str) -> None:
        self.url = url
        self.name = name
        self._connection = Connection(url)
        self._queue = self._connection.SimpleQueue(name)

    def raw(self) -> list[Any]:
        """Every message waiting (acknowledged and removed), as kombu messages.

        The producer publishes synchronously, so whatever was sent is already in the queue.
        """
        messages = []
        while True:
            try:
                message = self._queue.get_nowait()
            except Empty:
                return messages
            message.ack()
            messages.append(message)

    def bodies(self) -> list[list[Any]]:
        """The raw JSON bodies `[args, kwargs, embed]`, decoded without kombu's type hooks."""
        return [json.loads(message.body) for message in self.raw()]

    def task_dicts(self) -> list[dict[str, Any]]:
        return [body[0][0] for body in self.bodies()]

    def close(self) -> None:
        self._queue.clear()
        self._queue.queue.delete()
        self._queue.close()
        self._connection.release()


@pytest.fixture
def notifier(settings) -> Iterator[NotifierQueue]:
    """The producer enabled against the test Redis, on a queue unique to this test."""
    assert settings.CELERY_BROKER_URL, "the producer tests need Redis (REDIS_URL)"
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.NOTIFICATION_TASKS_QUEUE_NAME = f"notification_tasks_test_{uuid.uuid4().hex[:12]}"
    queue = NotifierQueue(settings.CELERY_BROKER_URL, settings.NOTIFICATION_TASKS_QUEUE_NAME)
    try:
        yield queue
    finally:
        queue.close()


def prepare(user, *, key: str = "session_reminder:1:1751878800", **overrides: Any):
    fields: dict[str, Any] = {
        "user_id": user.pk,
        "bot_id": "Bulgarian",
        "notification_type": NotificationType.SESSION_REMINDER,
        "text": "A new session is ready for you.\n\n/next",
        "reply_markup": None,
        "metadata": {},
        "context": {"session_frozen_until": NOW.isoformat()},
        "dedupe_key": key,
        "now": NOW,
        **overrides,
    }
    return notification_prepare(**fields)


def draft(user, key: str) -> NotificationDraft:
    return NotificationDraft(
        user_id=user.pk,
        bot_id="Bulgarian",
        notification_type=NotificationType.LONG_BREAK_REMINDER,
        text="Three days.\n\n/next",
        reply_markup=None,
        metadata={"reminder_type": "3d", "days_inactive": 3},
        context={"last_exercise_at": NOW.isoformat()},
        dedupe_key=key,
    )


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- preparing ----------------------------------------------------------------------------------


def test_prepare_outside_a_transaction_is_refused(monkeypatch):
    # pytest-django's test transaction is an atomic block: pretend we are outside it.
    monkeypatch.setattr(connection, "in_atomic_block", False)
    user = TelegramUserFactory()

    with pytest.raises(TransactionManagementError):
        prepare(user)


def test_prepare_inserts_a_pending_row_and_sends_only_on_commit(
    notifier, django_capture_on_commit_callbacks
):
    user = TelegramUserFactory(telegram_id="123456789")

    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        log = prepare(user)

    assert log is not None
    assert len(callbacks) == 1
    row = NotificationLog.objects.get(pk=log.pk)
    assert row.status == NotificationStatus.PENDING
    assert row.attempts == 0
    assert row.created_at == NOW
    assert notifier.raw() == [], "nothing is published before commit"

    callbacks[0]()

    row.refresh_from_db()
    assert row.status == NotificationStatus.ENQUEUED
    assert row.attempts == 1
    assert row.error == ""
    assert row.enqueued_at is not None
    [task] = notifier.task_dicts()
    assert task["task_id"] == str(row.task_id)
    assert task["payload"]["telegram_id"] == 123456789


def test_a_rolled_back_transaction_sends_nothing_and_leaves_no_row(
    notifier, django_capture_on_commit_callbacks
):
    user = TelegramUserFactory()

    def job() -> None:
        with transaction.atomic():
            prepare(user)
            notification_prepare_many(drafts=[draft(user, "long_break:1:3d:1")], now=NOW)
            raise RuntimeError("the job failed after preparing")

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
    ):
        job()

    assert callbacks == []
    assert not NotificationLog.objects.exists()
    assert notifier.raw() == []


def test_a_duplicate_key_returns_none_and_keeps_the_transaction_usable(
    notifier, django_capture_on_commit_callbacks
):
    user = TelegramUserFactory()
    existing = NotificationLogFactory(
        user=user, dedupe_key="session_reminder:1:1751878800", status=NotificationStatus.ENQUEUED
    )

    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        assert prepare(user) is None
        # The savepoint kept the outer transaction alive.
        assert NotificationLog.objects.filter(user=user).count() == 1

    assert callbacks == []
    assert NotificationLog.objects.get().pk == existing.pk
    assert notifier.raw() == []


def test_a_failed_duplicate_is_resent_with_the_same_row_and_task_id(
    notifier, django_capture_on_commit_callbacks
):
    user = TelegramUserFactory()
    failed = NotificationLogFactory(
        user=user,
        dedupe_key="session_reminder:1:1751878800",
        status=NotificationStatus.FAILED,
        attempts=1,
        error="celery_send_error: OperationalError: down",
    )

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        log = prepare(user)

    assert log is not None
    assert log.pk == failed.pk
    failed.refresh_from_db()
    assert failed.status == NotificationStatus.ENQUEUED
    assert failed.attempts == 2
    assert failed.error == ""
    assert [task["task_id"] for task in notifier.task_dicts()] == [str(failed.task_id)]


def test_a_failed_row_is_not_resent_before_its_back_off_ends(
    notifier, django_capture_on_commit_callbacks
):
    user = TelegramUserFactory()
    failed = NotificationLogFactory(
        user=user,
        dedupe_key="session_reminder:1:1751878800",
        status=NotificationStatus.FAILED,
        attempts=5,
        created_at=NOW - timedelta(minutes=30),
        next_attempt_at=NOW + timedelta(seconds=1),
    )

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        assert prepare(user) is None

    failed.refresh_from_db()
    assert (failed.status, failed.attempts) == (NotificationStatus.FAILED, 5)
    assert notifier.raw() == []


def test_a_failed_row_is_resent_whatever_its_attempts_once_due(
    notifier, django_capture_on_commit_callbacks
):
    """Issue 10 item 17: attempts never give a notification up; only relevance or age do."""
    user = TelegramUserFactory()
    failed = NotificationLogFactory(
        user=user,
        dedupe_key="session_reminder:1:1751878800",
        status=NotificationStatus.FAILED,
        attempts=7,
        created_at=NOW - timedelta(hours=3),
        next_attempt_at=NOW,
    )

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        assert prepare(user) is not None

    failed.refresh_from_db()
    assert (failed.status, failed.attempts) == (NotificationStatus.ENQUEUED, 8)
    [task] = notifier.task_dicts()
    assert task["task_id"] == str(failed.task_id)
    # This attempt's time, not the row's creation three hours ago.
    assert task["created_at"]["__value__"] == NOW.isoformat()


def test_a_failed_send_schedules_the_next_try_with_exponential_back_off(
    settings, notifier, django_capture_on_commit_callbacks
):
    settings.CELERY_BROKER_URL = DEAD_BROKER
    user = TelegramUserFactory()
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        log = prepare(user)
    assert log is not None
    log.refresh_from_db()
    assert (log.status, log.attempts) == (NotificationStatus.FAILED, 1)
    assert log.next_attempt_at == NOW + timedelta(seconds=settings.NOTIFICATION_RETRY_BASE_SECONDS)

    NotificationLog.objects.filter(pk=log.pk).update(attempts=3)
    later = NOW + timedelta(hours=1)
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        prepare(user, now=later)
    log.refresh_from_db()
    assert log.attempts == 4
    base = settings.NOTIFICATION_RETRY_BASE_SECONDS
    assert log.next_attempt_at == later + timedelta(
        seconds=min(base * 8, settings.NOTIFICATION_RETRY_MAX_DELAY_SECONDS)
    )


# --- sending ------------------------------------------------------------------------------------


def test_without_a_broker_the_row_is_skipped_and_logged(
    settings, django_capture_on_commit_callbacks, caplog
):
    caplog.set_level("INFO", logger="notifications.producer")
    settings.CELERY_BROKER_URL = ""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    user = TelegramUserFactory()

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        log = prepare(user)

    assert log is not None
    log.refresh_from_db()
    assert log.status == NotificationStatus.SKIPPED
    assert log.error == "no broker"
    assert log.attempts == 0
    assert log.enqueued_at is None
    assert "notifier disabled (no broker)" in caplog.text


def test_eager_mode_with_a_broker_url_is_disabled_too(django_capture_on_commit_callbacks):
    assert settings.CELERY_TASK_ALWAYS_EAGER  # the test settings
    user = TelegramUserFactory()

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        log = prepare(user)

    assert log is not None
    log.refresh_from_db()
    assert (log.status, log.error) == (NotificationStatus.SKIPPED, "no broker")


@pytest.mark.parametrize("telegram_id", ["@learner", "12a", "-", "1_000", "+5", ""])
def test_a_non_numeric_telegram_id_is_skipped_not_raised(
    notifier, django_capture_on_commit_callbacks, telegram_id
):
    user = TelegramUserFactory(telegram_id=telegram_id)
    before = metric(
        "backend_notification_enqueue_failure_total",
        reason="arg_preparation_error",
        notification_type="session_reminder",
    )

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        log = prepare(user)

    assert log is not None
    log.refresh_from_db()
    assert log.status == NotificationStatus.SKIPPED
    assert log.error == "non-numeric telegram_id"
    assert notifier.raw() == []
    after = metric(
        "backend_notification_enqueue_failure_total",
        reason="arg_preparation_error",
        notification_type="session_reminder",
    )
    assert after == before + 1


def test_a_negative_numeric_telegram_id_is_sent_as_an_int(
    notifier, django_capture_on_commit_callbacks
):
    user = TelegramUserFactory(telegram_id="-100200300")

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        prepare(user)

    [task] = notifier.task_dicts()
    assert task["payload"]["telegram_id"] == -100200300


def test_a_broker_failure_marks_the_row_failed_and_counts_it(
    notifier, settings, django_capture_on_commit_callbacks
):
    settings.CELERY_BROKER_URL = DEAD_BROKER
    user = TelegramUserFactory()
    labels = {"notification_type": "session_reminder"}
    attempts_before = metric("backend_notification_enqueue_attempt_total", **labels)
    failures_before = metric(
        "backend_notification_enqueue_failure_total", reason="celery_send_error", **labels
    )

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        log = prepare(user)

    assert log is not None
    log.refresh_from_db()
    assert log.status == NotificationStatus.FAILED
    assert log.attempts == 1
    assert log.error.startswith("celery_send_error: ")
    assert log.enqueued_at is None
    assert metric("backend_notification_enqueue_attempt_total", **labels) == attempts_before + 1
    assert (
        metric("backend_notification_enqueue_failure_total", reason="celery_send_error", **labels)
        == failures_before + 1
    )


def test_success_metrics_and_duration_are_recorded(notifier, django_capture_on_commit_callbacks):
    labels = {"notification_type": "long_break_reminder"}
    success_before = metric("backend_notification_enqueue_success_total", **labels)
    duration_before = metric("backend_notification_enqueue_duration_seconds_count", **labels)
    users = TelegramUserFactory.create_batch(3)

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        batch = notification_prepare_many(
            drafts=[draft(user, f"long_break:{user.pk}:3d:1") for user in users], now=NOW
        )

    assert batch.count(NotificationStatus.ENQUEUED) == 3
    assert metric("backend_notification_enqueue_success_total", **labels) == success_before + 3
    assert (
        metric("backend_notification_enqueue_duration_seconds_count", **labels)
        == duration_before + 3
    )
    assert len(notifier.raw()) == 3


def test_send_leaves_a_row_that_is_no_longer_pending_alone(notifier):
    log = NotificationLogFactory(status=NotificationStatus.ENQUEUED, attempts=1)

    assert notification_send(log.pk) is None

    log.refresh_from_db()
    assert log.attempts == 1
    assert notifier.raw() == []


def test_the_message_goes_to_the_notifier_task_on_the_notifier_queue(
    notifier, django_capture_on_commit_callbacks
):
    user = TelegramUserFactory(telegram_id="42")

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        log = prepare(user)

    assert log is not None
    [message] = notifier.raw()
    assert message.headers["task"] == NOTIFIER_TASK_NAME
    assert message.headers["id"] == str(log.task_id)
    assert message.delivery_info["routing_key"] == settings.NOTIFICATION_TASKS_QUEUE_NAME


def test_the_contract_over_an_in_memory_kombu_transport(
    settings, django_capture_on_commit_callbacks
):
    """docs/notifier.md: task name, queue, task id, one positional argument, datetime envelope."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = "memory://"
    settings.NOTIFICATION_TASKS_QUEUE_NAME = "notification_tasks_default"
    user = TelegramUserFactory(telegram_id="123456789")

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        log = notification_prepare(
            user_id=user.pk,
            bot_id="Bulgarian",
            notification_type=NotificationType.LONG_BREAK_REMINDER,
            text="<b>Three</b> days.\n\n/next",
            reply_markup=None,
            metadata={"reminder_type": "3d", "days_inactive": 3},
            context={"last_exercise_at": NOW.isoformat()},
            dedupe_key="long_break:7:3d:1751619600",
            now=NOW,
        )

    assert log is not None
    with Connection("memory://") as memory:
        queue = memory.SimpleQueue("notification_tasks_default")
        message = queue.get(block=True, timeout=1)
        message.ack()
        queue.close()
    assert message.headers["task"] == "src.notifier.tasks.send_notification"
    assert message.headers["id"] == str(log.task_id)
    assert message.properties["correlation_id"] == str(log.task_id)
    assert message.delivery_info["routing_key"] == "notification_tasks_default"
    assert message.content_type == "application/json"
    args, kwargs, _embed = json.loads(message.body)
    assert kwargs == {}
    assert args == [
        {
            "task_id": str(log.task_id),
            "bot_id": "Bulgarian",
            "user_id": user.pk,
            "text": "<b>Three</b> days.\n\n/next",
            "notification_type": "long_break_reminder",
            "payload": {
                "telegram_id": 123456789,
                "parse_mode": "HTML",
                "reply_markup": None,
                "disable_web_page_preview": True,
            },
            "metadata": {"reminder_type": "3d", "days_inactive": 3},
            "scheduled_at": None,
            "created_at": {"__type__": "datetime", "__value__": "2025-07-07T09:00:00.123456+00:00"},
        }
    ]
    assert list(args[0]) == [
        "task_id",
        "bot_id",
        "user_id",
        "text",
        "notification_type",
        "payload",
        "metadata",
        "scheduled_at",
        "created_at",
    ]


# --- many at once -------------------------------------------------------------------------------


def test_prepare_many_inserts_new_keys_skips_duplicates_and_retries_failed_rows(
    notifier, django_capture_on_commit_callbacks
):
    users = TelegramUserFactory.create_batch(4)
    NotificationLogFactory(
        user=users[0], dedupe_key="long_break:a:3d:1", status=NotificationStatus.ENQUEUED
    )
    failed = NotificationLogFactory(
        user=users[1], dedupe_key="long_break:b:3d:1", status=NotificationStatus.FAILED, attempts=2
    )
    NotificationLogFactory(
        user=users[2],
        dedupe_key="long_break:c:3d:1",
        status=NotificationStatus.FAILED,
        attempts=3,
        next_attempt_at=NOW + timedelta(minutes=1),  # backing off
    )
    drafts = [
        draft(users[0], "long_break:a:3d:1"),
        draft(users[1], "long_break:b:3d:1"),
        draft(users[2], "long_break:c:3d:1"),
        draft(users[3], "long_break:d:3d:1"),
        draft(users[3], "long_break:d:3d:1"),  # twice in one batch
    ]
    enqueued_keys: list[list[str]] = []

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        batch = notification_prepare_many(drafts=drafts, now=NOW, on_enqueued=enqueued_keys.append)

    assert len(batch.new) == 1
    assert batch.retried == [failed.pk]
    assert batch.duplicates == 3
    assert sorted(enqueued_keys[0]) == ["long_break:b:3d:1", "long_break:d:3d:1"]
    failed.refresh_from_db()
    assert (failed.status, failed.attempts) == (NotificationStatus.ENQUEUED, 3)
    assert NotificationLog.objects.count() == 4
    sent = {task["task_id"] for task in notifier.task_dicts()}
    new = NotificationLog.objects.get(dedupe_key="long_break:d:3d:1")
    assert sent == {str(failed.task_id), str(new.task_id)}


def test_on_enqueued_gets_only_the_keys_actually_enqueued(
    notifier, settings, django_capture_on_commit_callbacks
):
    settings.CELERY_BROKER_URL = DEAD_BROKER
    users = TelegramUserFactory.create_batch(5)
    enqueued_keys: list[list[str]] = []

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        batch = notification_prepare_many(
            drafts=[draft(user, f"long_break:{user.pk}:3d:1") for user in users],
            now=NOW,
            on_enqueued=enqueued_keys.append,
        )

    assert enqueued_keys == []
    assert batch.count(NotificationStatus.FAILED) == 5
    # After three broker failures in a row the rest are failed without trying: bounded time.
    assert set(NotificationLog.objects.values_list("status", "attempts")) == {("failed", 1)}


def _prepare_many_queries(users, prefix: str, django_capture_on_commit_callbacks) -> int:
    drafts = [draft(user, f"{prefix}:{user.pk}") for user in users]
    with (
        CaptureQueriesContext(connection) as queries,
        django_capture_on_commit_callbacks(execute=True),
        transaction.atomic(),
    ):
        notification_prepare_many(drafts=drafts, now=NOW, on_enqueued=lambda keys: None)
    return len(queries)


def test_prepare_many_issues_the_same_queries_for_10_and_100_drafts(
    notifier, django_capture_on_commit_callbacks
):
    small = _prepare_many_queries(
        TelegramUserFactory.create_batch(10), "small", django_capture_on_commit_callbacks
    )
    large = _prepare_many_queries(
        TelegramUserFactory.create_batch(100), "large", django_capture_on_commit_callbacks
    )

    assert small == large
    assert NotificationLog.objects.filter(status=NotificationStatus.ENQUEUED).count() == 110
    assert len(notifier.raw()) == 110


# --- stuck rows ---------------------------------------------------------------------------------


def test_pending_rows_older_than_ten_minutes_are_marked_failed():
    stuck = NotificationLogFactory(created_at=NOW - timedelta(minutes=10, seconds=1))
    recent = NotificationLogFactory(created_at=NOW - timedelta(minutes=9))
    enqueued = NotificationLogFactory(
        created_at=NOW - timedelta(hours=1), status=NotificationStatus.ENQUEUED
    )

    assert notification_fail_stuck(now=NOW) == 1

    stuck.refresh_from_db()
    recent.refresh_from_db()
    enqueued.refresh_from_db()
    assert (stuck.status, stuck.attempts) == (NotificationStatus.FAILED, 1)
    assert stuck.error.startswith("stuck in pending")
    assert recent.status == NotificationStatus.PENDING
    assert enqueued.status == NotificationStatus.ENQUEUED
