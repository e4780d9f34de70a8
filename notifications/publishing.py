"""The Notifier's message and its publication (docs/notifier.md); no database here.

`notification_message` builds the contract's message from a row; `publish` sends a chunk of them
on one broker connection with bounded timeouts and retries and sorts each into an outcome
(enqueued, failed with the error, skipped); `notifications.producer` writes those outcomes.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from kombu import Producer

from duoniche import metrics
from duoniche.celery import app as celery_app

logger = logging.getLogger(__name__)

#: The Notifier's task: the previous service's name, kept for byte compatibility.
NOTIFIER_TASK_NAME = "src.notifier.tasks.send_notification"
PARSE_MODE = "HTML"
#: After this many broker failures in a row, the rest of a batch is failed without trying.
MAX_CONSECUTIVE_BROKER_FAILURES = 3
ERROR_MAX_CHARS = 500

NO_BROKER = "no broker"
NON_NUMERIC_TELEGRAM_ID = "non-numeric telegram_id"
REASON_PREPARATION = "arg_preparation_error"
REASON_BROKER = "celery_send_error"

_TELEGRAM_ID = re.compile(r"-?[0-9]+")


# --- the message --------------------------------------------------------------------------------


class PreparationError(ValueError):
    """The row cannot become a message; `skip` rows are never retried."""

    def __init__(self, message: str, *, skip: bool = False) -> None:
        super().__init__(message)
        self.skip = skip


@dataclass(frozen=True)
class OutgoingNotification:
    """What a `pending` row contributes to its message (read without model instances)."""

    pk: int
    task_id: uuid.UUID
    dedupe_key: str
    user_id: int
    telegram_id: str
    bot_id: str
    notification_type: str
    text: str
    reply_markup: dict[str, Any] | None
    metadata: dict[str, Any]
    attempts: int


def notification_message(log: OutgoingNotification, *, now: datetime) -> dict[str, Any]:
    """The Notifier's single positional argument, keys in the contract's order.

    `created_at` is `now`, the moment of this attempt: a retry is a fresh message (issue 10).
    """
    telegram_id = str(log.telegram_id or "").strip()
    if not _TELEGRAM_ID.fullmatch(telegram_id):
        raise PreparationError(NON_NUMERIC_TELEGRAM_ID, skip=True)
    return {
        "task_id": str(log.task_id),
        "bot_id": log.bot_id,
        "user_id": log.user_id,
        "text": log.text,
        "notification_type": log.notification_type,
        "payload": {
            "telegram_id": int(telegram_id),
            "parse_mode": PARSE_MODE,
            "reply_markup": log.reply_markup,
            "disable_web_page_preview": True,
        },
        "metadata": log.metadata,
        "scheduled_at": None,
        # An aware UTC datetime object: kombu's JSON encoder writes the `__type__` envelope.
        "created_at": now.astimezone(UTC),
    }


def error_text(reason: str, exc: BaseException | None = None) -> str:
    text = reason if exc is None else f"{reason}: {type(exc).__name__}: {exc}"
    return text[:ERROR_MAX_CHARS]


@dataclass
class Outcomes:
    """Send results of one chunk, by outcome (the producer writes them)."""

    enqueued: list[int] = field(default_factory=list)
    failed: dict[str, list[OutgoingNotification]] = field(default_factory=lambda: defaultdict(list))
    skipped: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))


def log_only(logs: list[OutgoingNotification], outcomes: Outcomes) -> None:
    """The producer is disabled (no broker): log each notification and skip it."""
    for log in logs:
        logger.info(
            "notifier disabled (no broker): %s to user %s in %s not sent: %r",
            log.notification_type,
            log.user_id,
            log.bot_id,
            log.text[:200],
        )
        outcomes.skipped[NO_BROKER].append(log.pk)


def _publish_retry_policy() -> dict[str, Any]:
    """Bounded publish retries: a down broker costs a fraction of a second per message."""
    return {
        "max_retries": max(int(settings.NOTIFICATION_PUBLISH_MAX_RETRIES), 0),
        "interval_start": 0,
        "interval_step": 0.2,
        "interval_max": 0.2,
    }


def publish(logs: list[OutgoingNotification], outcomes: Outcomes, *, now: datetime) -> None:
    """`send_task` each row's message on one broker connection, recording each outcome.

    The connection has connect and read timeouts, so a broker that accepts connections but never
    answers fails the send instead of hanging the job.
    """
    queue = settings.NOTIFICATION_TASKS_QUEUE_NAME
    broker_failures = 0
    last_broker_error = ""
    timeout = float(settings.NOTIFICATION_PUBLISH_TIMEOUT_SECONDS)
    retry_policy = _publish_retry_policy()
    with celery_app.connection_for_write(
        settings.CELERY_BROKER_URL,
        connect_timeout=timeout,
        transport_options={"socket_timeout": timeout, "socket_connect_timeout": timeout},
    ) as connection:
        producer = Producer(connection, auto_declare=False)  # what `send_task` would build
        for log in logs:
            notification_type = log.notification_type
            if broker_failures >= MAX_CONSECUTIVE_BROKER_FAILURES:
                outcomes.failed[last_broker_error].append(log)
                metrics.notification_enqueue_failure.labels(
                    reason=REASON_BROKER, notification_type=notification_type
                ).inc()
                continue
            metrics.notification_enqueue_attempt.labels(notification_type=notification_type).inc()
            try:
                message = notification_message(log, now=now)
            except PreparationError as exc:
                metrics.notification_enqueue_failure.labels(
                    reason=REASON_PREPARATION, notification_type=notification_type
                ).inc()
                logger.warning("notification %s not sent: %s", log.task_id, exc)
                if exc.skip:
                    outcomes.skipped[str(exc)].append(log.pk)
                else:
                    outcomes.failed[error_text(REASON_PREPARATION, exc)].append(log)
                continue
            except SoftTimeLimitExceeded:
                raise
            except Exception as exc:
                metrics.notification_enqueue_failure.labels(
                    reason=REASON_PREPARATION, notification_type=notification_type
                ).inc()
                logger.exception("notification %s: preparing the message failed", log.task_id)
                outcomes.failed[error_text(REASON_PREPARATION, exc)].append(log)
                continue
            started = time.monotonic()
            try:
                celery_app.send_task(
                    NOTIFIER_TASK_NAME,
                    args=[message],
                    queue=queue,
                    task_id=message["task_id"],
                    producer=producer,
                    retry_policy=retry_policy,
                )
            except SoftTimeLimitExceeded:
                raise
            except Exception as exc:
                broker_failures += 1
                last_broker_error = error_text(REASON_BROKER, exc)
                metrics.notification_enqueue_failure.labels(
                    reason=REASON_BROKER, notification_type=notification_type
                ).inc()
                logger.warning("notification %s: send_task failed: %s", log.task_id, exc)
                outcomes.failed[last_broker_error].append(log)
                continue
            finally:
                metrics.notification_enqueue_duration.labels(
                    notification_type=notification_type
                ).observe(time.monotonic() - started)
            broker_failures = 0
            metrics.notification_enqueue_success.labels(notification_type=notification_type).inc()
            outcomes.enqueued.append(log.pk)
