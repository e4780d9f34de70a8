"""The notification log read for the producer and the scheduler (docs/notifier.md); no writes.

Which drafts were already produced and which of their rows are due for a retry, the `failed` rows
due, the `pending` rows to send (as the messages' input), and the rules behind them: when a retry
is due, when a row is too old to be sent, when a `pending` row is stuck. Every query is set-based,
`CHUNK_SIZE` keys or ids at a time. `notifications.producer` writes the rows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, Protocol, TypeVar

from django.conf import settings
from django.db.models import BooleanField, ExpressionWrapper, Q

from duoniche.enums import NotificationStatus
from notifications.models import NotificationLog
from notifications.publishing import OutgoingNotification

#: A `pending` row older than this was committed but never sent (the process died).
STUCK_AFTER = timedelta(minutes=10)
#: Rows per INSERT / per `IN (...)` list, and messages per status flush.
CHUNK_SIZE = 1000

T = TypeVar("T")


class Keyed(Protocol):
    """What the plan reads of a draft (`notifications.producer.NotificationDraft`): its key."""

    @property
    def dedupe_key(self) -> str: ...


D = TypeVar("D", bound=Keyed)


def chunks(items: Sequence[T], size: int = CHUNK_SIZE) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def retry_max_age() -> timedelta:
    return timedelta(seconds=int(settings.NOTIFICATION_RETRY_MAX_AGE_SECONDS))


def retry_due(*, now: datetime) -> Q:
    """A `failed` row whose retry is due and which is not too old to be sent."""
    return Q(status=NotificationStatus.FAILED, created_at__gte=now - retry_max_age()) & (
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )


def stuck_pending(*, now: datetime) -> Q:
    """`pending` rows whose latest attempt (or creation) began over `STUCK_AFTER` ago."""
    cut = now - STUCK_AFTER
    return Q(status=NotificationStatus.PENDING) & (
        Q(last_attempt_at__lt=cut) | Q(last_attempt_at__isnull=True, created_at__lt=cut)
    )


@dataclass(frozen=True)
class NotificationPlan(Generic[D]):
    """Which drafts would be inserted, which existing rows re-sent, how many are duplicates."""

    new: list[D]
    retry_ids: list[int]
    retry_keys: list[str]
    duplicates: int


def notification_plan(drafts: Sequence[D], *, now: datetime) -> NotificationPlan[D]:
    """Split `drafts` against the log (one query per `CHUNK_SIZE` drafts)."""
    unique: dict[str, D] = {}
    for draft in drafts:
        unique.setdefault(draft.dedupe_key, draft)
    keys = list(unique)
    existing: dict[str, tuple[int, bool]] = {}
    for chunk in chunks(keys):
        for pk, key, due in (
            NotificationLog.objects.filter(dedupe_key__in=chunk)
            .annotate(due=ExpressionWrapper(retry_due(now=now), output_field=BooleanField()))
            .values_list("pk", "dedupe_key", "due")
        ):
            existing[key] = (pk, bool(due))
    retry = [(pk, key) for key, (pk, due) in existing.items() if due]
    return NotificationPlan(
        new=[draft for key, draft in unique.items() if key not in existing],
        retry_ids=[pk for pk, _ in retry],
        retry_keys=[key for _, key in retry],
        duplicates=len(drafts) - len(unique) + len(existing) - len(retry),
    )


def notification_retries_due(*, now: datetime, limit: int) -> list[NotificationLog]:
    """`failed` rows whose retry is due (too old ones included, to be given up), oldest first."""
    return list(
        NotificationLog.objects.filter(status=NotificationStatus.FAILED)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .order_by("next_attempt_at", "pk")[:limit]
    )


_OUTGOING_FIELDS = (
    "pk",
    "task_id",
    "dedupe_key",
    "user_id",
    "user__telegram_id",
    "bot_id",
    "notification_type",
    "text",
    "reply_markup",
    "metadata",
    "attempts",
)


def pending_outgoing(log_ids: Sequence[int]) -> list[OutgoingNotification]:
    """The `pending` rows among `log_ids`, by id, as their messages' input (no model instances)."""
    rows = (
        NotificationLog.objects.filter(pk__in=log_ids, status=NotificationStatus.PENDING)
        .order_by("pk")
        .values_list(*_OUTGOING_FIELDS)
    )
    return [OutgoingNotification(*row) for row in rows]
