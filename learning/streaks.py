"""Streak days and streak freezes (docs/learning.md): the rule, with no reads or writes of its own.

A streak counts the learner's consecutive days with practice, in the learner's own time zone when
it is known (the `time_zone` setting), UTC otherwise. Each `STREAK_FREEZE_EVERY_DAYS` days of
streak earn a freeze, up to `STREAK_FREEZES_MAX` held; on return after missed days, one freeze
per missed day keeps the streak going when enough are held.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo

from django.conf import settings


@dataclass(frozen=True)
class Streak:
    """A profile's streak after a day's practice: its length, freezes held, and freezes used."""

    days: int
    freezes: int
    freezes_used: int = 0


def learner_zone(name: str | None) -> tzinfo:
    """The learner's time zone by its IANA name; UTC when none is known (or it vanished)."""
    if name:
        try:
            return zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass
    return UTC


def local_day(moment: datetime, zone: tzinfo) -> date:
    return moment.astimezone(zone).date()


def streak_on_practice(
    *, days: int, freezes: int, last_practice: datetime | None, now: datetime, zone: tzinfo
) -> Streak:
    """The streak once the learner practises at `now` (their previous practice `last_practice`)."""
    if last_practice is None:
        return _earned(Streak(days=1, freezes=freezes), before=0)
    gap = (local_day(now, zone) - local_day(last_practice, zone)).days
    if gap <= 0:
        return Streak(days=max(days, 1), freezes=freezes)
    missed = gap - 1
    if missed == 0:
        return _earned(Streak(days=days + 1, freezes=freezes), before=days)
    if days > 0 and missed <= freezes:
        kept = Streak(days=days + 1, freezes=freezes - missed, freezes_used=missed)
        return _earned(kept, before=days)
    return _earned(Streak(days=1, freezes=freezes), before=0)


def _earned(streak: Streak, *, before: int) -> Streak:
    """`streak`, plus a freeze when its length just reached a multiple of the earning period."""
    every, most = settings.STREAK_FREEZE_EVERY_DAYS, settings.STREAK_FREEZES_MAX
    if streak.days > before and streak.days % every == 0 and streak.freezes < most:
        return Streak(
            days=streak.days, freezes=streak.freezes + 1, freezes_used=streak.freezes_used
        )
    return streak
