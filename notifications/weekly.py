"""The `weekly_reports` job: Monday short reports and their notifications (docs/jobs.md).

Crontab Monday 09:00 UTC with safety re-fires at 10:00, 11:00 and 12:00; the runner's period key
is the ISO week, so a re-fire after a success is `skipped_period`. The body:

1. asks `learning` for the PENDING short reports of the previous week
   (`learning.report_services.weekly_reports_create`: one grouped candidate query, a bulk insert
   made idempotent by `uniq_report_user_bot_week`, one set-based profile update);
2. produces the short-report notification of every report of that week whose
   `short_notified_at` is null and whose profile is active, in batches of
   `REPORT_NOTIFICATION_BATCH_SIZE`, sleeping `REPORT_NOTIFICATION_BATCH_DELAY_SECONDS` between
   batches (never in a dry run). Each batch is one transaction in which the producer inserts the
   log rows (de-duplicated by `weekly_report_short:<report_id>`); it sends them after commit, and
   the reports whose notification was enqueued get `short_notified_at`.

A second run in the same week finds nothing to create and nothing to notify.
"""

from __future__ import annotations

import logging
import time
from datetime import date, datetime
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Subquery

from duoniche.enums import NotificationStatus, NotificationType, ProfileStatus
from duoniche.texts import render
from learning.models import BotProfile, WeeklyReport
from learning.report_selectors import weekly_report_candidates, weekly_report_week_start
from learning.report_services import reports_mark_short_notified, weekly_reports_create
from notifications.producer import NotificationDraft, PreparedBatch, notification_prepare_many

logger = logging.getLogger(__name__)

FULL_WEEKLY_REPORT_PREFIX = "full_weekly_report"


def short_report_dedupe_key(report_id: int) -> str:
    return f"weekly_report_short:{report_id}"


def short_report_markup(report_id: int, button_text: str) -> dict[str, Any]:
    """The button under the short report: "yes, prepare my detailed report" (docs/notifier.md)."""
    return {
        "inline_keyboard": [
            [
                {
                    "text": button_text,
                    "callback_data": f"{FULL_WEEKLY_REPORT_PREFIX}:yes:{report_id}",
                }
            ]
        ]
    }


def _reports_to_notify(week_start: date) -> Any:
    """Reports of the week not notified yet whose profile is active, with the profile's language."""
    profile = BotProfile.objects.filter(
        user_id=OuterRef("user_id"), bot_id=OuterRef("bot_id"), status=ProfileStatus.ACTIVE
    )
    return (
        WeeklyReport.objects.filter(week_start_date=week_start, short_notified_at__isnull=True)
        .filter(Exists(profile))
        .annotate(user_language=Subquery(profile.values("user_language")[:1]))
        .order_by("pk")
    )


def weekly_reports_notify(*, week_start: date, now: datetime) -> dict[str, int]:
    """Produce the short-report notifications of `week_start`'s reports in batches.

    Each batch is one transaction holding a set-based `notification_prepare_many` (a constant
    number of queries per batch); the producer sends after commit, and only the reports whose
    notification was enqueued get `short_notified_at = now`, conditional on it being null. A
    report whose notification failed to enqueue keeps a null `short_notified_at`: the
    scheduler's catch-up offers it again and the producer re-sends the failed row.
    """
    rows = list(
        _reports_to_notify(week_start).values_list(
            "pk", "user_id", "bot_id", "short_report", "user_language"
        )
    )
    size = max(int(settings.REPORT_NOTIFICATION_BATCH_SIZE), 1)
    delay = float(settings.REPORT_NOTIFICATION_BATCH_DELAY_SECONDS)
    stats = {"notifications_new": 0, "notifications_retried": 0, "notifications_duplicate": 0}
    sent: list[PreparedBatch] = []
    buttons: dict[str | None, str] = {}  # the button's label, rendered once per language
    batches = 0
    for offset in range(0, len(rows), size):
        if offset and delay > 0:
            time.sleep(delay)  # between batches only, outside any transaction
        drafts: dict[str, NotificationDraft] = {}
        for report_id, user_id, bot_id, short_report, language in rows[offset : offset + size]:
            if language not in buttons:
                buttons[language] = render("weekly_report_detailed_button", language)
            key = short_report_dedupe_key(report_id)
            drafts[key] = NotificationDraft(
                user_id=user_id,
                bot_id=bot_id,
                notification_type=NotificationType.WEEKLY_REPORT,
                text=short_report,
                reply_markup=short_report_markup(report_id, buttons[language]),
                metadata={"report_id": report_id},
                context={"report_id": report_id},
                dedupe_key=key,
            )
        with transaction.atomic():
            batch = notification_prepare_many(
                drafts=list(drafts.values()),
                now=now,
                on_enqueued=partial(_mark_notified, drafts=drafts, now=now),
                on_sent=sent.append,
            )
        batches += 1
        stats["notifications_new"] += len(batch.new)
        stats["notifications_retried"] += len(batch.retried)
        stats["notifications_duplicate"] += batch.duplicates
    stats["notifications_enqueued"] = sum(
        batch.count(NotificationStatus.ENQUEUED) for batch in sent
    )
    stats["notifications_not_enqueued"] = sum(
        len(batch.outcomes) - batch.count(NotificationStatus.ENQUEUED) for batch in sent
    )
    stats["batches"] = batches
    return stats


def _mark_notified(keys: list[str], *, drafts: dict[str, NotificationDraft], now: datetime) -> None:
    """After a successful enqueue: `short_notified_at = now` where it is still null."""
    report_ids = [drafts[key].metadata["report_id"] for key in keys if key in drafts]
    reports_mark_short_notified(report_ids=report_ids, now=now)


def weekly_reports(*, now: datetime, dry_run: bool) -> dict[str, Any]:
    """The job body (docs/jobs.md): create last week's short reports, then notify them.

    A dry run writes nothing: it counts the reports that would be created and the reports of the
    week already waiting for their notification.
    """
    week_start = weekly_report_week_start(now)
    if dry_run:
        return {
            "week_start": week_start.isoformat(),
            "reports_to_create": len(weekly_report_candidates(week_start=week_start)),
            "reports_waiting_notification": _reports_to_notify(week_start).count(),
        }
    created = weekly_reports_create(now=now)
    notified = weekly_reports_notify(week_start=week_start, now=now)
    stats: dict[str, Any] = {
        "week_start": week_start.isoformat(),
        "reports_created": created.candidates,
        "profiles_updated": created.profiles_updated,
        **notified,
    }
    logger.info("weekly_reports: %s", stats)
    return stats
