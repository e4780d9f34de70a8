"""The Notifier producer (docs/notifier.md): log rows in, Celery messages out.

A notification is produced in two steps:

1. **Prepare**, inside the caller's transaction: insert a `NotificationLog` row (`pending`, a fresh
   `task_id`, a unique `dedupe_key`) and register a `transaction.on_commit` callback that sends
   it. A `dedupe_key` already present means the notification was already produced: nothing is
   inserted, unless the existing row is `failed` and due for its retry, which is claimed
   (`failed → pending`) and sent again with the same row and `task_id`.
2. **Send**, after commit, synchronously (never inside a transaction, never from a web request):
   `notifications.publishing` builds the message of the contract and publishes it with
   `celery_app.send_task` to the Notifier queue; this module then records the outcome:
   `enqueued` (`enqueued_at`), `failed` (`attempts`, `error`, `next_attempt_at`; retried by a
   later scheduler cycle) or `skipped` (no broker, a non-numeric `telegram_id`).

A broker outage never gives a notification up (issue 10 item 17): a `failed` row is retried with
exponential back-off (`NOTIFICATION_RETRY_BASE_SECONDS`, doubling up to
`NOTIFICATION_RETRY_MAX_DELAY_SECONDS`), however many attempts that takes, until it is sent, no
longer relevant, or older than `NOTIFICATION_RETRY_MAX_AGE_SECONDS` (the scheduler decides; see
`notifications.scheduler.failed_notifications_retry`). Each attempt's message carries the time of
that attempt as `created_at`, so a Notifier that drops stale messages does not drop a retry.
Publishing fails fast: socket timeouts of `NOTIFICATION_PUBLISH_TIMEOUT_SECONDS` and at most
`NOTIFICATION_PUBLISH_MAX_RETRIES` retries per message.

Two entry points share this path: `notification_prepare` (one notification, a savepoint per call)
and `notification_prepare_many` (set-based, for jobs: a constant number of queries per batch, and
an `on_enqueued` callback for the follow-up writes that must happen only after a successful
enqueue).

On-commit callbacks run when the outermost `atomic` block exits, so once it has exited the sends
have happened: re-read the row (`NotificationLog.status`) to learn the outcome.

Without a broker (`CELERY_BROKER_URL` empty, i.e. `REDIS_URL` empty) or in eager mode the producer
is disabled (docs/jobs.md): each notification is logged and its row set to `skipped`, "no broker".

This module is the log's one write path; what it reads first (the plan, the rows due, the rows to
send, stuck rows) is in `notifications.log_selectors`.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.transaction import TransactionManagementError
from django.utils import timezone

from duoniche.enums import NotificationStatus
from notifications.log_selectors import (
    CHUNK_SIZE,
    chunks,
    notification_plan,
    pending_outgoing,
    retry_due,
    stuck_pending,
)
from notifications.models import NotificationLog
from notifications.publishing import Outcomes, log_only, publish

logger = logging.getLogger(__name__)

NOT_RELEVANT = "no longer relevant"
TOO_OLD = "too old"


def _require_transaction() -> None:
    if not transaction.get_connection().in_atomic_block:
        raise TransactionManagementError(
            "a notification is prepared inside transaction.atomic() and sent on commit"
        )


def retry_delay(attempts: int) -> timedelta:
    """The wait before the next try of a row that has failed `attempts` times (≥ 1)."""
    base = max(int(settings.NOTIFICATION_RETRY_BASE_SECONDS), 1)
    cap = max(int(settings.NOTIFICATION_RETRY_MAX_DELAY_SECONDS), base)
    exponent = min(max(attempts, 1) - 1, 32)
    return timedelta(seconds=min(base * 2**exponent, cap))


def notifier_enabled() -> bool:
    """False without a broker or in eager mode: notifications are then logged and `skipped`."""
    return bool(settings.CELERY_BROKER_URL) and not settings.CELERY_TASK_ALWAYS_EAGER


# --- preparing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NotificationDraft:
    """One notification to produce: the row's content, before it has an id or a task id."""

    user_id: int
    bot_id: str
    notification_type: str
    text: str
    reply_markup: dict[str, Any] | None
    metadata: dict[str, Any]
    context: dict[str, Any]
    dedupe_key: str
    is_full_report: bool = False

    def as_log(self, *, now: datetime) -> NotificationLog:
        return NotificationLog(
            task_id=uuid.uuid4(),
            dedupe_key=self.dedupe_key,
            user_id=self.user_id,
            bot_id=self.bot_id,
            notification_type=self.notification_type,
            is_full_report=self.is_full_report,
            text=self.text,
            reply_markup=self.reply_markup,
            metadata=self.metadata,
            context=self.context,
            status=NotificationStatus.PENDING,
            created_at=now,
            last_attempt_at=now,
        )


def _claim_retries(log_ids: Sequence[int], *, now: datetime) -> list[int]:
    """Move the `failed` rows among `log_ids` due for a retry back to `pending`; those claimed.

    The rows are locked (`skip_locked`: a concurrent producer claiming the same row keeps it), so
    of two producers only one re-sends a row.
    """
    claimed: list[int] = []
    for chunk in chunks(log_ids):
        ids = list(
            NotificationLog.objects.filter(retry_due(now=now), pk__in=chunk)
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)
        )
        if ids:
            NotificationLog.objects.filter(pk__in=ids).update(
                status=NotificationStatus.PENDING, last_attempt_at=now
            )
            claimed += ids
    return claimed


def notification_prepare(
    *,
    user_id: int,
    bot_id: str,
    notification_type: str,
    text: str,
    reply_markup: dict[str, Any] | None,
    metadata: dict[str, Any],
    context: dict[str, Any],
    dedupe_key: str,
    is_full_report: bool = False,
    now: datetime,
) -> NotificationLog | None:
    """Insert one notification and send it when the caller's transaction commits.

    Must run inside `transaction.atomic()`. Returns the row to be sent, or None when `dedupe_key`
    was already produced (the insert is done in a savepoint, so the caller's transaction goes on).
    A duplicate whose row is `failed` and due for its retry is the exception: that row is claimed
    and re-sent, and returned.
    """
    _require_transaction()
    draft = NotificationDraft(
        user_id=user_id,
        bot_id=bot_id,
        notification_type=notification_type,
        text=text,
        reply_markup=reply_markup,
        metadata=metadata,
        context=context,
        dedupe_key=dedupe_key,
        is_full_report=is_full_report,
    )
    log = draft.as_log(now=now)
    try:
        with transaction.atomic():
            log.save(force_insert=True)
    except IntegrityError:
        existing = NotificationLog.objects.filter(dedupe_key=dedupe_key).first()
        if existing is None or not _claim_retries([existing.pk], now=now):
            logger.info("notification %s already produced; not sent again", dedupe_key)
            return None
        logger.info("notification %s failed before; sending it again", dedupe_key)
        existing.refresh_from_db()
        log = existing
    transaction.on_commit(partial(notification_send, log.pk, now=now))
    return log


@dataclass
class PreparedBatch:
    """What `notification_prepare_many` did; the send counts are filled in after commit."""

    new: list[int] = field(default_factory=list)
    retried: list[int] = field(default_factory=list)
    duplicates: int = 0
    outcomes: dict[int, str] = field(default_factory=dict)
    enqueued_keys: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for outcome in self.outcomes.values() if outcome == status)


def notification_prepare_many(
    *,
    drafts: Sequence[NotificationDraft],
    now: datetime,
    on_enqueued: Callable[[list[str]], None] | None = None,
    on_sent: Callable[[PreparedBatch], None] | None = None,
) -> PreparedBatch:
    """Insert many notifications at once and send them when the caller's transaction commits.

    Must run inside `transaction.atomic()`. Drafts whose `dedupe_key` was already produced are
    skipped, except `failed` rows due for a retry, which are claimed and re-sent. After
    commit the batch is sent, then `on_enqueued(<dedupe keys enqueued>)` runs the follow-up writes
    and `on_sent(batch)` sees the outcomes. The number of queries does not grow with the number of
    drafts below `CHUNK_SIZE`.
    """
    _require_transaction()
    plan = notification_plan(drafts, now=now)
    batch = PreparedBatch(duplicates=plan.duplicates)
    batch.retried = _claim_retries(plan.retry_ids, now=now) if plan.retry_ids else []
    batch.duplicates += len(plan.retry_ids) - len(batch.retried)
    logs = [draft.as_log(now=now) for draft in plan.new]
    if logs:
        # A concurrent producer may have inserted a key since the plan: ignore the conflict and
        # send only the rows that carry our task ids.
        NotificationLog.objects.bulk_create(logs, batch_size=CHUNK_SIZE, ignore_conflicts=True)
        for chunk in chunks([log.task_id for log in logs]):
            batch.new += NotificationLog.objects.filter(task_id__in=chunk).values_list(
                "pk", flat=True
            )
        batch.duplicates += len(logs) - len(batch.new)
    to_send = batch.new + batch.retried
    if to_send:
        transaction.on_commit(
            partial(
                _send_batch,
                batch=batch,
                log_ids=to_send,
                now=now,
                on_enqueued=on_enqueued,
                on_sent=on_sent,
            )
        )
    return batch


def notification_retry_many(
    *,
    log_ids: Sequence[int],
    now: datetime,
    on_enqueued: Callable[[list[str]], None] | None = None,
    on_sent: Callable[[PreparedBatch], None] | None = None,
) -> PreparedBatch:
    """Claim the `failed` rows among `log_ids` due for a retry and send them on commit.

    Must run inside `transaction.atomic()`. The same rows and task ids are sent again; the
    callbacks are those of `notification_prepare_many`. Rows claimed meanwhile by someone else, or
    no longer due, are left alone.
    """
    _require_transaction()
    batch = PreparedBatch()
    batch.retried = _claim_retries(log_ids, now=now) if log_ids else []
    if batch.retried:
        transaction.on_commit(
            partial(
                _send_batch,
                batch=batch,
                log_ids=batch.retried,
                now=now,
                on_enqueued=on_enqueued,
                on_sent=on_sent,
            )
        )
    return batch


def notification_give_up(*, log_ids: Sequence[int], reason: str) -> int:
    """`failed → skipped` with `reason` (no longer relevant, too old); the rows changed."""
    given_up = 0
    for chunk in chunks(list(log_ids)):
        given_up += NotificationLog.objects.filter(
            pk__in=chunk, status=NotificationStatus.FAILED
        ).update(status=NotificationStatus.SKIPPED, error=reason, next_attempt_at=None)
    return given_up


def _send_batch(
    *,
    batch: PreparedBatch,
    log_ids: list[int],
    now: datetime,
    on_enqueued: Callable[[list[str]], None] | None,
    on_sent: Callable[[PreparedBatch], None] | None,
) -> None:
    sent = _send_many(log_ids, now=now)
    batch.outcomes = {pk: status for pk, _, status in sent}
    keys = [key for _, key, status in sent if status == NotificationStatus.ENQUEUED]
    batch.enqueued_keys = keys
    if on_enqueued is not None and keys:
        on_enqueued(keys)
    if on_sent is not None:
        on_sent(batch)


# --- sending ------------------------------------------------------------------------------------


def _outcomes_flush(outcomes: Outcomes, *, now: datetime) -> dict[int, str]:
    """Write the statuses of one chunk, one UPDATE per (status, error); {log id: status}."""
    statuses: dict[int, str] = {}
    if outcomes.enqueued:
        NotificationLog.objects.filter(pk__in=outcomes.enqueued).update(
            status=NotificationStatus.ENQUEUED,
            enqueued_at=now,
            attempts=F("attempts") + 1,
            error="",
        )
        statuses.update(dict.fromkeys(outcomes.enqueued, NotificationStatus.ENQUEUED.value))
    for error, logs in outcomes.failed.items():
        by_attempts: dict[int, list[int]] = defaultdict(list)
        for log in logs:
            by_attempts[log.attempts + 1].append(log.pk)
        for attempts, ids in by_attempts.items():
            NotificationLog.objects.filter(pk__in=ids).update(
                status=NotificationStatus.FAILED,
                attempts=attempts,
                error=error,
                next_attempt_at=now + retry_delay(attempts),
            )
            statuses.update(dict.fromkeys(ids, NotificationStatus.FAILED.value))
    for error, ids in outcomes.skipped.items():
        NotificationLog.objects.filter(pk__in=ids).update(
            status=NotificationStatus.SKIPPED, error=error
        )
        statuses.update(dict.fromkeys(ids, NotificationStatus.SKIPPED.value))
    return statuses


def notification_send(log_id: int, *, now: datetime | None = None) -> str | None:
    """Send one prepared row (see `notification_send_many`); its status afterwards, or None."""
    return notification_send_many([log_id], now=now).get(log_id)


def notification_send_many(
    log_ids: Sequence[int], *, now: datetime | None = None
) -> dict[int, str]:
    """Publish the `pending` rows among `log_ids` to the Notifier queue; {log id: new status}.

    Called after commit, outside any transaction. Rows that are no longer `pending` (sent by
    someone else, or marked stuck) are left alone. Statuses are written once per chunk. `now` is
    the attempt's time (the message's `created_at`, `enqueued_at`); the clock's by default.
    """
    return {pk: status for pk, _, status in _send_many(log_ids, now=now or timezone.now())}


def _send_many(log_ids: Sequence[int], *, now: datetime) -> list[tuple[int, str, str]]:
    """(log id, dedupe key, new status) of every row sent, failed or skipped."""
    sent: list[tuple[int, str, str]] = []
    enabled = notifier_enabled()
    for chunk in chunks(list(log_ids)):
        logs = pending_outgoing(list(chunk))
        if not logs:
            continue
        outcomes = Outcomes()
        try:
            if enabled:
                publish(logs, outcomes, now=now)
            else:
                log_only(logs, outcomes)
        finally:
            # Even when the soft time limit interrupts the chunk: what was sent is recorded, the
            # rest stays pending (and is retried as stuck).
            statuses = _outcomes_flush(outcomes, now=now)
        sent += [(log.pk, log.dedupe_key, statuses[log.pk]) for log in logs if log.pk in statuses]
        logger.info(
            "notifications: %d enqueued, %d failed, %d skipped",
            len(outcomes.enqueued),
            sum(map(len, outcomes.failed.values())),
            sum(map(len, outcomes.skipped.values())),
        )
    return sent


# --- stuck rows ---------------------------------------------------------------------------------


def notification_fail_stuck(*, now: datetime) -> int:
    """Mark `pending` rows whose attempt began over `STUCK_AFTER` ago as `failed`, due now.

    A row stays `pending` only if its process died between commit and send; the lost try counts
    as an attempt, and the retry rule (back-off, relevance, maximum age) applies.
    """
    return NotificationLog.objects.filter(stuck_pending(now=now)).update(
        status=NotificationStatus.FAILED,
        attempts=F("attempts") + 1,
        error="stuck in pending: not sent after commit",
        next_attempt_at=now,
    )
