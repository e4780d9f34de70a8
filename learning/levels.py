"""The level policy (docs/learning.md): a learner's level follows their recent answers.

Weighed at each set boundary of next-action: of the learner's last `LEVEL_WINDOW` answers in the
bot to exercises at their level, given since the level last changed, a share right of at least
`LEVEL_PROMOTE_SHARE` moves them one level up and at most `LEVEL_DEMOTE_SHARE` one level down.
Fewer answers than the window decide nothing. Three things keep a learner from bouncing between
two levels: the gap between the thresholds, a fresh window after each change, and a higher bar
(`LEVEL_RETURN_SHARE`) for going back up to a level the policy moved them down from within
`LEVEL_RETURN_DAYS`. The `adaptive_level` setting (false) pins the
level; staff may also set it in the admin. This module decides; `learning.profiles` writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings

from duoniche.enums import LanguageLevel, LevelChangeSource
from learning.models import BotProfile, ExerciseAttempt, LevelChange

#: How many of the learner's latest answers (any level) are read to find the window's answers.
SCAN_FACTOR = 4


@dataclass(frozen=True)
class LevelDecision:
    """A change the policy makes, with the figures behind it."""

    to_level: str
    promoted: bool
    reason: str


def answers_at_level(*, profile: BotProfile, window: int) -> list[bool]:
    """Whether each of the latest `window` answers at the profile's level was right, newest first.

    Only answers in the profile's bot, given since the level last changed; one read, bounded: the
    learner's latest `SCAN_FACTOR × window` answers by the (user, created_at) index.
    """
    recent = ExerciseAttempt.objects.filter(user_id=profile.user_id)
    if profile.level_changed_at is not None:
        recent = recent.filter(created_at__gt=profile.level_changed_at)
    rows = recent.order_by("-created_at").values_list(
        "is_correct", "exercise__exercise_language", "exercise__language_level"
    )[: SCAN_FACTOR * window]
    level, bot_id = profile.language_level, profile.bot_id
    at_level = [
        right for right, language, of_level in rows if (language, of_level) == (bot_id, level)
    ]
    return at_level[:window]


def _moved_down_from(*, profile: BotProfile, level: str, now: datetime) -> bool:
    """Whether the policy moved the learner down from `level` within `LEVEL_RETURN_DAYS`."""
    return LevelChange.objects.filter(
        profile=profile,
        from_level=level,
        source=LevelChangeSource.POLICY,
        created_at__gt=now - timedelta(days=settings.LEVEL_RETURN_DAYS),
    ).exists()


def level_decide(*, profile: BotProfile, now: datetime) -> LevelDecision | None:
    """The level change the learner's answers call for, or None."""
    window = settings.LEVEL_WINDOW
    answers = answers_at_level(profile=profile, window=window)
    if len(answers) < window:
        return None
    right = sum(answers)
    share = right / len(answers)
    levels = list(LanguageLevel.values)
    position = levels.index(profile.language_level)
    figures = f"{right} of the last {len(answers)} answers at {profile.language_level} right"
    if share >= settings.LEVEL_PROMOTE_SHARE and position + 1 < len(levels):
        higher = levels[position + 1]
        bar = settings.LEVEL_PROMOTE_SHARE
        if _moved_down_from(profile=profile, level=higher, now=now):
            bar = settings.LEVEL_RETURN_SHARE
        if share >= bar:
            return LevelDecision(
                to_level=higher,
                promoted=True,
                reason=f"{figures} (moved up at {bar:.0%} or more)",
            )
        return None
    if share <= settings.LEVEL_DEMOTE_SHARE and position > 0:
        return LevelDecision(
            to_level=levels[position - 1],
            promoted=False,
            reason=f"{figures} (moved down at {settings.LEVEL_DEMOTE_SHARE:.0%} or less)",
        )
    return None
