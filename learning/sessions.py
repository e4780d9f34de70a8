"""The session engine: what a learner gets next (docs/api.md, next-action), decided and recorded.

The common case runs without a transaction: the decision is made on the profile as read, and its
fields are written only if the row is still the version that was read (no BEGIN or COMMIT round
trip). When another write came between, when the profile does not exist yet, or when the decision
needs a write besides the profile's (a plan that ended, a level change), the decision is made
again on the profile row locked for the request. Either way the fields are written by
`learning.profiles.profile_record_next_action` (the profile's one write path).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction

from duoniche import metrics
from duoniche.enums import UI_TEMPLATE_BY_TYPE, LevelChangeSource, ProfileStatus, UserAction
from duoniche.language_tags import normalise_language_code
from duoniche.languages import Language, get_language, latin_to_cyrillic, shows_cyrillic
from duoniche.texts import format_pause_time, render, render_variant
from exercises.content import map_texts, public_data
from exercises.models import Exercise
from learning.effective_settings import EffectiveSettings, effective_settings, effective_status
from learning.errors import invalid_bot, user_not_found
from learning.levels import level_decide
from learning.models import BotProfile, TelegramUser
from learning.profiles import (
    metric_labels,
    profile_change_level,
    profile_get_or_create,
    profile_record_next_action,
    profile_reset_session,
)
from learning.selection import exercise_select
from learning.selectors import profile_with_version, user_with_profile
from learning.streaks import learner_zone, streak_on_practice
from learning.users import user_expire_plan

logger = logging.getLogger(__name__)

SESSION_UNLOCK_CALLBACK = "initiate_payment:session_unlock"


@dataclass
class NextAction:
    action: str
    message: str | None = None
    pause: timedelta | None = None
    keyboard: list[dict[str, str]] | None = None
    exercise: dict[str, Any] | None = None
    changed: list[str] = field(default_factory=list, repr=False)


def _select_locked_profile(*, user_id: int, bot_id: str) -> BotProfile | None:
    """The profile row locked for this request, with its user, in one statement."""
    _, profile = user_with_profile(
        condition="u.id = %s", params=[user_id], bot_id=bot_id, lock=True
    )
    return profile


def _locked_profile(*, user_id: int, bot_id: str) -> tuple[BotProfile, bool]:
    """The profile row, locked, with its user; created (race-safe) if the user has none yet.

    Returns (profile, whether this call may have created it).
    """
    profile = _select_locked_profile(user_id=user_id, bot_id=bot_id)
    if profile is not None:
        return profile, False
    user = TelegramUser.objects.filter(pk=user_id).first()
    if user is None:
        raise user_not_found(user_id, status=400)
    data = user.telegram_data if isinstance(user.telegram_data, dict) else {}
    # Whatever Telegram sent (or nothing): normalised, the default when it is not a language tag.
    language = normalise_language_code(data.get("language_code"))
    profile_get_or_create(user=user, bot_id=bot_id, user_language=language)
    profile = _select_locked_profile(user_id=user_id, bot_id=bot_id)
    assert profile is not None  # just created or found, and profiles are never deleted here
    return profile, True


def _payment_keyboard(language: str) -> list[dict[str, str]]:
    return [
        {"text": render("payment_button_text", language), "callback_data": SESSION_UNLOCK_CALLBACK}
    ]


class _NeedsLock(Exception):
    """The unlocked decision reached a write besides the profile's: it must be made locked."""


@dataclass
class _Effects:
    """The metric increments of one decision: made at once when it runs locked; held until its
    write lands when it runs unlocked (a decision that gives way is not counted)."""

    unlocked: bool
    held: list[Callable[[], None]] = field(default_factory=list)

    def count(self, counter: Any) -> None:
        if self.unlocked:
            self.held.append(counter.inc)
        else:
            counter.inc()

    def before_other_writes(self) -> None:
        if self.unlocked:
            raise _NeedsLock

    def landed(self) -> None:
        for increment in self.held:
            increment()


def profile_next_action(*, user_id: int, bot_id: str, now: datetime) -> NextAction:
    """Decide what the learner gets next and record it atomically."""
    language = get_language(bot_id)
    if language is None:
        raise invalid_bot(bot_id, code="invalid_bot_id", status=422)
    served = _next_action_unlocked(user_id=user_id, bot_id=bot_id, language=language, now=now)
    if served is not None:
        return served
    with transaction.atomic():
        profile, created = _locked_profile(user_id=user_id, bot_id=bot_id)
        plan = (profile.user.status, profile.user.status_expires_at)
        result = _next_action(
            profile=profile, language=language, now=now, effects=_Effects(unlocked=False)
        )
        if result.changed:
            # Bookkeeping of a served exercise: the commit need not wait for the disk
            # (duoniche/rows.py, DATABASE_ASYNC_BOOKKEEPING_COMMIT), unless this transaction also
            # created the profile or ended the user's plan: those wait, like every user write.
            ended_plan = (profile.user.status, profile.user.status_expires_at) != plan
            profile_record_next_action(
                profile=profile, fields=result.changed, flush_wait=created or ended_plan
            )
    return result


def _next_action_unlocked(
    *, user_id: int, bot_id: str, language: Language, now: datetime
) -> NextAction | None:
    """The decision on the profile as read, written only if the row is still that version: one
    read, the pick and one UPDATE, each its own statement. None: the locked path decides."""
    found = profile_with_version(user_id=user_id, bot_id=bot_id)
    if found is None:
        return None
    profile, version = found
    effects = _Effects(unlocked=True)
    try:
        result = _next_action(profile=profile, language=language, now=now, effects=effects)
    except _NeedsLock:
        return None
    if result.changed and not profile_record_next_action(
        profile=profile, fields=result.changed, flush_wait=False, version=version
    ):
        return None
    effects.landed()
    return result


def _next_action(
    *, profile: BotProfile, language: Language, now: datetime, effects: _Effects
) -> NextAction:
    user = profile.user
    changed: list[str] = []
    labels = metric_labels(user, profile)
    if profile.status == ProfileStatus.BLOCKED:
        profile.status, profile.reason = ProfileStatus.ACTIVE, None
        changed += ["status", "reason"]
    if effective_status(user, now) != user.status:
        effects.before_other_writes()
        user_expire_plan(user=user)
    learning = effective_settings(user=user, profile=profile, language=language, now=now)
    ui_language = profile.user_language

    if profile.session_frozen_until is not None:
        if now < profile.session_frozen_until:
            effects.count(metrics.frozen_attempts.labels(**labels))
            return NextAction(
                action=UserAction.LIMIT_REACHED,
                message=render(
                    "limit_reached",
                    ui_language,
                    pause_time=format_pause_time(
                        profile.session_frozen_until - now, language=ui_language
                    ),
                ),
                keyboard=_payment_keyboard(ui_language),
                changed=changed,
            )
        changed += profile_reset_session(profile=profile, now=now)
    if profile.session_started_at is None or now - profile.session_started_at > (
        settings.MAX_SESSIONS_LENGTH
    ):
        changed += profile_reset_session(profile=profile, now=now)

    if profile.exercises_get_in_session >= learning.session_exercise_limit:
        pause = timedelta(minutes=learning.min_session_interval_minutes)
        profile.session_frozen_until = now + pause
        profile.wants_session_reminders = None
        changed += ["session_frozen_until", "wants_session_reminders"]
        effects.count(metrics.full_sessions.labels(**labels))
        placeholders: dict[str, Any] = {
            "exercise_num": profile.exercises_get_in_session,
            "pause_time": format_pause_time(pause, language=ui_language),
        }
        key = "congratulations_and_wait"
        if profile.current_streak_days >= 2:
            key = "congratulations_and_wait_streak"
            placeholders["streak_days"] = profile.current_streak_days
        news = _set_news(
            profile=profile, learning=learning, now=now, changed=changed, effects=effects
        )
        return NextAction(
            action=UserAction.CONGRATULATIONS_AND_WAIT,
            message=_with_news(render(key, ui_language, **placeholders), news),
            pause=pause,
            keyboard=_payment_keyboard(ui_language),
            changed=changed,
        )

    if profile.exercises_get_in_set >= learning.exercises_in_set:
        profile.exercises_get_in_set = 0
        profile.errors_count_in_set = 0
        profile.reviews_get_in_set = 0
        changed += ["exercises_get_in_set", "errors_count_in_set", "reviews_get_in_set"]
        news = _set_news(
            profile=profile, learning=learning, now=now, changed=changed, effects=effects
        )
        return NextAction(
            action=UserAction.PRAISE_AND_NEXT_SET,
            message=_with_news(render_variant("praise_and_next_set", ui_language), news),
            changed=changed,
        )

    selection = exercise_select(profile=profile, learning=learning, now=now)
    exercise = selection.exercise
    if exercise is None:
        return NextAction(
            action=UserAction.ERROR,
            message=render("error_getting_new_exercise", ui_language),
            changed=changed,
        )
    changed += _streak_on_practice(profile=profile, learning=learning, now=now)
    profile.exercises_get_in_session += 1
    profile.exercises_get_in_set += 1
    profile.last_exercise_at = now
    profile.last_exercise_id = exercise.pk
    profile.last_long_break_reminder_type_sent = None
    profile.last_long_break_reminder_sent_at = None
    if selection.review:
        profile.reviews_get_in_set += 1
        changed.append("reviews_get_in_set")
    if selection.looked_for_review and selection.review_due_at != profile.review_due_at:
        profile.review_due_at = selection.review_due_at
        changed.append("review_due_at")
    changed += [
        "exercises_get_in_session",
        "exercises_get_in_set",
        "last_exercise_at",
        "last_exercise_id",
        "last_long_break_reminder_type_sent",
        "last_long_break_reminder_sent_at",
    ]
    exercise_labels = metrics.exercise_labels(
        exercise_type=exercise.exercise_type, level=exercise.language_level
    )
    effects.count(metrics.exercise_sent.labels(**exercise_labels))
    if selection.repetition:
        effects.count(metrics.exercise_sent_repetition.labels(**exercise_labels))
    return NextAction(
        action=UserAction.NEW_EXERCISE,
        exercise=exercise_for_learner(
            exercise, ui_language=ui_language, language=language, alphabet=learning.alphabet
        ),
        changed=changed,
    )


def _streak_on_practice(
    *, profile: BotProfile, learning: EffectiveSettings, now: datetime
) -> list[str]:
    """Count today's practice in the streak (spending freezes on missed days); the fields set."""
    streak = streak_on_practice(
        days=profile.current_streak_days,
        freezes=profile.streak_freezes,
        last_practice=profile.last_exercise_at,
        now=now,
        zone=learner_zone(learning.time_zone),
    )
    profile.current_streak_days = streak.days
    profile.streak_freezes = streak.freezes
    profile.streak_freezes_used += streak.freezes_used
    return ["current_streak_days", "streak_freezes", "streak_freezes_used"]


def _set_news(
    *,
    profile: BotProfile,
    learning: EffectiveSettings,
    now: datetime,
    changed: list[str],
    effects: _Effects,
) -> list[str]:
    """What the learner is told at the end of a set: a level change, streak freezes used.

    The level policy is weighed here (one read); a change is recorded on the locked profile.
    """
    news: list[str] = []
    ui_language = profile.user_language
    if settings.ADAPTIVE_LEVEL and learning.adaptive_level:
        decision = level_decide(profile=profile, now=now)
        if decision is not None:
            effects.before_other_writes()
            changed += profile_change_level(
                profile=profile,
                to_level=decision.to_level,
                source=LevelChangeSource.POLICY,
                reason=decision.reason,
                now=now,
            )
            key = "level_up" if decision.promoted else "level_down"
            news.append(render(key, ui_language, level=decision.to_level))
    if profile.streak_freezes_used:
        news.append(
            render(
                "streak_freeze_used",
                ui_language,
                freezes_used=profile.streak_freezes_used,
                streak_days=profile.current_streak_days,
            )
        )
        profile.streak_freezes_used = 0
        changed.append("streak_freezes_used")
    return news


def _with_news(message: str, news: list[str]) -> str:
    return "\n\n".join([message, *news])


def exercise_for_learner(
    exercise: Exercise, *, ui_language: str, language: Language, alphabet: str | None
) -> dict[str, Any]:
    """The exercise as sent to the bot: public data, localised task, the learner's alphabet."""
    data = public_data(exercise.exercise_type, exercise.data)
    if shows_cyrillic(language, alphabet):
        data = map_texts(data, latin_to_cyrillic)
    return {
        "exercise_id": exercise.pk,
        "exercise_type": exercise.exercise_type,
        "exercise_language": exercise.exercise_language,
        "language_level": exercise.language_level,
        "topic": exercise.topic,
        "exercise_text": render(f"task_{exercise.exercise_type}", ui_language),
        "ui_template": UI_TEMPLATE_BY_TYPE[exercise.exercise_type],
        "data": data,
    }
