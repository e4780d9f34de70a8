"""Who is due for which notification (docs/jobs.md): one set-based query per part.

Every selector returns plain rows, read in one query whatever the number of candidates; the
scheduler turns them into notifications. Times of day are compared in explicit UTC, whatever the
DB session's time zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import OuterRef, Q, Subquery
from django.db.models.functions import TruncTime

from duoniche.enums import ProfileStatus, ReportStatus
from learning.models import BotProfile, WeeklyReport

#: Reports created this recently without a short-report notification are caught up.
SHORT_REPORT_CATCH_UP = timedelta(days=2)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class SessionReminderCandidate:
    profile_id: int
    user_id: int
    bot_id: str
    user_language: str
    session_frozen_until: datetime


@dataclass(frozen=True)
class LongBreakCandidate:
    profile_id: int
    user_id: int
    bot_id: str
    user_language: str
    last_exercise_at: datetime
    current_streak_days: int
    last_long_break_reminder_type_sent: str | None
    last_long_break_reminder_sent_at: datetime | None
    streak_freezes: int = 0


@dataclass(frozen=True)
class ReportCandidate:
    report_id: int
    user_id: int
    bot_id: str
    text: str
    user_language: str


def profiles_due_for_session_reminder(*, now: datetime) -> list[SessionReminderCandidate]:
    """Opted-in active profiles whose freeze ended within the lookback."""
    lookback = timedelta(seconds=settings.SESSION_REMINDER_LOOKBACK_SECONDS)
    rows = (
        BotProfile.objects.filter(
            status=ProfileStatus.ACTIVE,
            wants_session_reminders=True,
            session_frozen_until__gt=now - lookback,
            session_frozen_until__lte=now,
        )
        .order_by("pk")
        .values_list("pk", "user_id", "bot_id", "user_language", "session_frozen_until")
    )
    return [
        SessionReminderCandidate(pk, user_id, bot_id, language, frozen_until)
        for pk, user_id, bot_id, language, frozen_until in rows
        if frozen_until is not None
    ]


def time_of_day_window(*, now: datetime, field: str) -> Q | None:
    """`field` (a UTC `time`) within ±half the window of `now`'s UTC time of day, modulo 24 h.

    A window crossing midnight is the union of `[start, 24:00)` and `[00:00, end]`. None when the
    window covers the whole day.
    """
    half = timedelta(seconds=settings.LONG_BREAK_REMINDER_TIME_WINDOW_SECONDS) / 2
    if half * 2 >= DAY:
        return None
    start = (now - half).astimezone(UTC).time()
    end = (now + half).astimezone(UTC).time()
    if start <= end:
        return Q(**{f"{field}__gte": start, f"{field}__lte": end})
    return Q(**{f"{field}__gte": start}) | Q(**{f"{field}__lte": end})


def long_break_first_interval() -> timedelta:
    intervals = settings.LONG_BREAK_REMINDER_INTERVALS
    return min(intervals[step] for step in settings.LONG_BREAK_REMINDER_SEQUENCE)


def profiles_due_for_long_break(*, now: datetime) -> list[LongBreakCandidate]:
    """Active profiles inactive ≥ the first interval, practising at about this UTC time.

    Profiles still in cooldown, and those whose ladder is finished, are left out here already;
    the scheduler decides the step of each one.
    """
    sequence = settings.LONG_BREAK_REMINDER_SEQUENCE
    if not sequence:
        return []
    cooldown = timedelta(hours=settings.LONG_BREAK_REMINDERS_COOLDOWN_HOURS)
    profiles = (
        BotProfile.objects.filter(
            status=ProfileStatus.ACTIVE, last_exercise_at__lte=now - long_break_first_interval()
        )
        .filter(
            Q(last_long_break_reminder_sent_at__isnull=True)
            | Q(last_long_break_reminder_sent_at__lte=now - cooldown)
        )
        .exclude(last_long_break_reminder_type_sent=sequence[-1])
    )
    window = time_of_day_window(now=now, field="last_exercise_time_utc")
    if window is not None:
        profiles = profiles.annotate(
            last_exercise_time_utc=TruncTime("last_exercise_at", tzinfo=UTC)
        ).filter(window)
    rows = profiles.order_by("pk").values_list(
        "pk",
        "user_id",
        "bot_id",
        "user_language",
        "last_exercise_at",
        "current_streak_days",
        "last_long_break_reminder_type_sent",
        "last_long_break_reminder_sent_at",
        "streak_freezes",
    )
    return [
        LongBreakCandidate(pk, user_id, bot, language, last, streak, type_sent, sent_at, freezes)
        for pk, user_id, bot, language, last, streak, type_sent, sent_at, freezes in rows
        if last is not None
    ]


def _active_profile_language() -> Subquery:
    """The interface language of the report's profile, null unless that profile is active."""
    return Subquery(
        BotProfile.objects.filter(
            user_id=OuterRef("user_id"), bot_id=OuterRef("bot_id"), status=ProfileStatus.ACTIVE
        ).values("user_language")[:1]
    )


def reports_due_for_full_delivery(*, now: datetime) -> list[ReportCandidate]:
    """Generated detailed reports past the sending delay, of active profiles."""
    delay = timedelta(seconds=settings.FULL_WEEKLY_REPORT_SENDING_DELAY)
    rows = (
        WeeklyReport.objects.filter(
            status=ReportStatus.GENERATED, full_generated_at__lte=now - delay
        )
        .exclude(full_report__isnull=True)
        .exclude(full_report="")
        .annotate(profile_language=_active_profile_language())
        .filter(profile_language__isnull=False)
        .order_by("pk")
        .values_list("pk", "user_id", "bot_id", "full_report", "profile_language")
    )
    return [
        ReportCandidate(pk, user_id, bot_id, text, str(language))
        for pk, user_id, bot_id, text, language in rows
        if text
    ]


def reports_due_for_short_catch_up(*, now: datetime) -> list[ReportCandidate]:
    """Reports of the last two days never announced, of active profiles."""
    rows = (
        WeeklyReport.objects.filter(
            generated_at__gte=now - SHORT_REPORT_CATCH_UP, short_notified_at__isnull=True
        )
        .annotate(profile_language=_active_profile_language())
        .filter(profile_language__isnull=False)
        .order_by("pk")
        .values_list("pk", "user_id", "bot_id", "short_report", "profile_language")
    )
    return [
        ReportCandidate(pk, user_id, bot_id, text, str(language))
        for pk, user_id, bot_id, text, language in rows
        if text
    ]
