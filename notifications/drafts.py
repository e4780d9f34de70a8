"""What each scheduled notification says: the drafts `notification_scheduler` hands the producer.

A draft is the text in the learner's language, the keyboard, the metadata the Notifier reads and
the dedupe key that makes a notification happen once: a session reminder once per freeze, a
long-break step once per absence, a report once per report. Also the long-break ladder: which step
is due. No database access here; `notifications.scheduler` reads the candidates and sends.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings

from duoniche.enums import NotificationType
from duoniche.texts import render, render_variant
from notifications.producer import NotificationDraft
from notifications.selectors import LongBreakCandidate, ReportCandidate, SessionReminderCandidate

NEXT_COMMAND = "\n\n/next"


def _unix(moment: datetime) -> int:
    return int(moment.timestamp())


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


# --- the long-break ladder ----------------------------------------------------------------------


def long_break_step(
    *,
    now: datetime,
    last_exercise_at: datetime | None,
    last_type_sent: str | None,
    last_sent_at: datetime | None,
) -> str | None:
    """The ladder step due now, or None (not inactive long enough, cooldown, ladder finished).

    Steps after the last one sent (null or unknown: from the beginning); the largest one whose
    interval has passed, so a long absence skips the earlier steps. The cooldown is measured from
    the last reminder: exactly `LONG_BREAK_REMINDERS_COOLDOWN_HOURS` passes. The time-of-day window
    is the selector's business.
    """
    if last_exercise_at is None:
        return None
    if last_sent_at is not None and now - last_sent_at < timedelta(
        hours=settings.LONG_BREAK_REMINDERS_COOLDOWN_HOURS
    ):
        return None
    sequence: list[str] = settings.LONG_BREAK_REMINDER_SEQUENCE
    intervals: dict[str, timedelta] = settings.LONG_BREAK_REMINDER_INTERVALS
    start = sequence.index(last_type_sent) + 1 if last_type_sent in sequence else 0
    since = now - last_exercise_at
    due = [step for step in sequence[start:] if intervals[step] <= since]
    return max(due, key=lambda step: intervals[step]) if due else None


def long_break_text(
    *, step: str, language: str, streak_days: int, freezes: int = 0, days_away: int = 1
) -> str:
    """`1d`: a streak variant (streak > 1) or `long_break_1d`; `90d`: `long_break_final`.

    While the learner's streak freezes can still cover the days missed so far (one missed day per
    freeze, docs/learning.md), the text says so.
    """
    if step == "1d" and streak_days > 1:
        text = render_variant("long_break_1d_streak", language, streak_days=streak_days)
    elif step == "90d":
        text = render("long_break_final", language)
    else:
        text = render(f"long_break_{step}", language)
    if streak_days > 1 and freezes > 0 and days_away - 1 <= freezes and step != "90d":
        held = render("streak_freeze_held", language, freezes=freezes, streak_days=streak_days)
        text = f"{text}\n\n{held}"
    return text + NEXT_COMMAND


# --- drafts -------------------------------------------------------------------------------------


def session_reminder_draft(candidate: SessionReminderCandidate) -> NotificationDraft:
    frozen_until = candidate.session_frozen_until
    return NotificationDraft(
        user_id=candidate.user_id,
        bot_id=candidate.bot_id,
        notification_type=NotificationType.SESSION_REMINDER,
        text=render("session_is_ready", candidate.user_language) + NEXT_COMMAND,
        reply_markup=None,
        metadata={},
        context={"session_frozen_until": _iso(frozen_until)},
        dedupe_key=f"session_reminder:{candidate.profile_id}:{_unix(frozen_until)}",
    )


def long_break_draft(
    candidate: LongBreakCandidate, *, step: str, now: datetime
) -> NotificationDraft:
    last_exercise_at = candidate.last_exercise_at
    return NotificationDraft(
        user_id=candidate.user_id,
        bot_id=candidate.bot_id,
        notification_type=NotificationType.LONG_BREAK_REMINDER,
        text=long_break_text(
            step=step,
            language=candidate.user_language,
            streak_days=candidate.current_streak_days,
            freezes=candidate.streak_freezes,
            days_away=(now - last_exercise_at).days,
        ),
        reply_markup=None,
        metadata={"reminder_type": step, "days_inactive": (now - last_exercise_at).days},
        context={"last_exercise_at": _iso(last_exercise_at)},
        dedupe_key=f"long_break:{candidate.profile_id}:{step}:{_unix(last_exercise_at)}",
    )


def _keyboard(text: str, callback_data: str) -> dict[str, Any]:
    return {"inline_keyboard": [[{"text": text, "callback_data": callback_data}]]}


def full_report_draft(candidate: ReportCandidate) -> NotificationDraft:
    report_id = candidate.report_id
    return NotificationDraft(
        user_id=candidate.user_id,
        bot_id=candidate.bot_id,
        notification_type=NotificationType.WEEKLY_REPORT,
        text=candidate.text,
        reply_markup=_keyboard(
            render("report_donation_button_text", candidate.user_language),
            f"initiate_payment:report_donation:{report_id}",
        ),
        metadata={"report_id": report_id, "is_full_report": True},
        context={"report_id": report_id},
        dedupe_key=f"weekly_report_full:{report_id}",
        is_full_report=True,
    )


def short_report_draft(candidate: ReportCandidate) -> NotificationDraft:
    report_id = candidate.report_id
    return NotificationDraft(
        user_id=candidate.user_id,
        bot_id=candidate.bot_id,
        notification_type=NotificationType.WEEKLY_REPORT,
        text=candidate.text,
        reply_markup=_keyboard(
            render("weekly_report_detailed_button", candidate.user_language),
            f"full_weekly_report:yes:{report_id}",
        ),
        metadata={"report_id": report_id},
        context={"report_id": report_id},
        dedupe_key=f"weekly_report_short:{report_id}",
    )
