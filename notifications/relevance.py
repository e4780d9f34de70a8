"""Is a queued notification still worth delivering? (docs/api.md, docs/notifier.md)

The Notifier asks just before it sends. The log row stored, when it was produced, the facts the
message relied on (`context`); the notification is relevant while they still hold.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from duoniche.enums import NotificationType, ProfileStatus, ReportStatus
from learning.models import BotProfile, WeeklyReport
from notifications.models import NotificationLog

logger = logging.getLogger(__name__)


def _stored_moment(context: dict[str, Any], key: str) -> datetime | None:
    """A datetime stored in the context as an ISO string (null, absent or unreadable: None)."""
    value = context.get(key)
    if not isinstance(value, str):
        return None
    try:
        moment = parse_datetime(value)
    except ValueError:
        return None
    if moment is not None and timezone.is_naive(moment):
        moment = timezone.make_aware(moment, UTC)
    return moment


def _stored_id(context: dict[str, Any], key: str) -> int | None:
    value = context.get(key)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdecimal():
        return int(value)
    return None


def notification_is_relevant(*, task_id: str, user_id: int, bot_id: str, now: datetime) -> bool:
    """True unless a notification we produced no longer fits the learner's current state.

    Unknown task ids (not produced by us, or not even a UUID) fail open: True. A user id below 1
    names no learner, so nothing is relevant to it (the previous service answered 200 too).
    """
    if user_id < 1:
        return False
    try:
        key = uuid.UUID(task_id)
    except ValueError:
        key = None
    log = NotificationLog.objects.filter(task_id=key).first() if key is not None else None
    if log is None:
        logger.info("relevance asked for unknown notification %r; answering relevant", task_id)
        return True
    if log.user_id != user_id or log.bot_id != bot_id:
        return False
    profile = BotProfile.objects.filter(user_id=user_id, bot_id=bot_id).first()
    if profile is None or profile.status != ProfileStatus.ACTIVE:
        return False
    report = None
    if log.notification_type == NotificationType.WEEKLY_REPORT:
        report_id = notification_report_id(log)
        if report_id is not None:
            report = WeeklyReport.objects.filter(pk=report_id).first()
    return notification_log_is_relevant(
        log=log, profile=profile, report=report, now=now, before_send=False
    )


def notification_report_id(log: NotificationLog) -> int | None:
    """The report a weekly-report notification is about (its context), or None."""
    context = log.context if isinstance(log.context, dict) else {}
    return _stored_id(context, "report_id")


def notification_log_is_relevant(
    *,
    log: NotificationLog,
    profile: BotProfile | None,
    report: WeeklyReport | None,
    now: datetime,
    before_send: bool,
) -> bool:
    """The relevance rules, on rows already read: `profile` is the log's (user, bot) profile,
    `report` the report of a weekly-report notification (None when absent).

    `before_send` asks whether a notification not yet enqueued is still worth sending (the
    scheduler's retries): a detailed report is then still `GENERATED` (it becomes `SENT` when
    enqueued). Unknown types are relevant.
    """
    if profile is None or profile.status != ProfileStatus.ACTIVE:
        return False
    if (profile.user_id, profile.bot_id) != (log.user_id, log.bot_id):
        return False
    context = log.context if isinstance(log.context, dict) else {}

    if log.notification_type == NotificationType.SESSION_REMINDER:
        frozen_until = _stored_moment(context, "session_frozen_until")
        return (
            profile.wants_session_reminders is True
            and frozen_until is not None
            and profile.session_frozen_until == frozen_until
            and frozen_until <= now
        )
    if log.notification_type == NotificationType.LONG_BREAK_REMINDER:
        return profile.last_exercise_at == _stored_moment(context, "last_exercise_at")
    if log.notification_type == NotificationType.WEEKLY_REPORT:
        if report is None or report.pk != notification_report_id(log):
            return False
        if (report.user_id, report.bot_id) != (log.user_id, log.bot_id):
            return False
        if not log.is_full_report:
            return True
        statuses = (
            {ReportStatus.SENT, ReportStatus.GENERATED} if before_send else {ReportStatus.SENT}
        )
        return report.status in statuses and bool(report.full_report)
    logger.info(
        "relevance of notification %s of unknown type %r; answering relevant",
        log.task_id,
        log.notification_type,
    )
    return True
