"""Writes for learners: users, bot profiles and the session engine (next action).

Every API view, payment and job that changes a profile goes through these functions. Each checks
everything it can before its first write and runs its writes in one short transaction; profile
rows that concurrent requests change are locked (`select_for_update`) and counters use `F()`.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Max

from duoniche import metrics
from duoniche.api.errors import ApplicationError
from duoniche.enums import (
    UI_TEMPLATE_BY_TYPE,
    ExerciseStatus,
    ExerciseTopic,
    LanguageLevel,
    ProfileStatus,
    UserAction,
    UserStatus,
)
from duoniche.language_tags import normalise_language_code
from duoniche.languages import (
    Language,
    bot_ids,
    get_language,
    latin_to_cyrillic,
    shows_cyrillic,
)
from duoniche.rows import instance_from_row, select_list, update_row
from duoniche.texts import format_pause_time, render, render_variant
from exercises.content import map_texts, public_data
from exercises.models import Exercise
from exercises.selectors import SqlCondition, exercise_pick_random
from learning.effective_settings import EffectiveSettings, effective_settings, effective_status
from learning.models import BotProfile, ExerciseAttempt, TelegramUser

logger = logging.getLogger(__name__)

SESSION_UNLOCK_CALLBACK = "initiate_payment:session_unlock"
LEVEL_OFFSETS: dict[int, float] = {0: 0.75, 1: 0.10, 2: 0.05, -1: 0.10}
UNSET: Any = object()


# --- errors the API maps to the wire ----------------------------------------------------------


def user_not_found(user_id: Any, *, status: int = 404) -> ApplicationError:
    return ApplicationError(f"User {user_id} was not found.", code="user_not_found", status=status)


def profile_not_found(user_id: Any, bot_id: str, *, status: int = 404) -> ApplicationError:
    return ApplicationError(
        f"User {user_id} has no profile for the {bot_id} bot.",
        code="profile_not_found",
        status=status,
    )


def invalid_bot(bot_id: str, *, code: str, status: int) -> ApplicationError:
    what = "target language" if code == "invalid_target_language" else "bot id"
    return ApplicationError(
        f"{bot_id!r} is not a configured {what}; valid values: {', '.join(bot_ids())}.",
        code=code,
        status=status,
    )


# --- users and profiles -----------------------------------------------------------------------


def _profile_defaults(user_language: str) -> dict[str, Any]:
    return {
        "user_language": normalise_language_code(user_language),
        "language_level": settings.DEFAULT_LANGUAGE_LEVEL,
        "status": ProfileStatus.ACTIVE,
    }


def _get_or_create_profile(*, user: TelegramUser, bot_id: str, user_language: str) -> BotProfile:
    """Race-safe get-or-create: the unique (user, bot_id) decides; a loser re-reads."""
    profile = BotProfile.objects.filter(user=user, bot_id=bot_id).first()
    if profile is not None:
        return profile
    try:
        with transaction.atomic():
            return BotProfile.objects.create(
                user=user, bot_id=bot_id, **_profile_defaults(user_language)
            )
    except IntegrityError:
        return BotProfile.objects.get(user=user, bot_id=bot_id)


def _user_and_profile(
    *, condition: str, params: list[Any], bot_id: str, lock: bool = False
) -> tuple[TelegramUser | None, BotProfile | None]:
    """A user (`condition` on alias `u`) with its profile for `bot_id`, in one statement.

    The profile is None when the user has none for that bot, except with `lock`: then only a user
    with a profile is found, and the profile row stays locked until the transaction ends. Written
    out (parameterised) because the bots call this before every exercise and session, and the
    ORM's compilation of the reads cost more than running them.
    """
    join = "JOIN" if lock else "LEFT JOIN"  # FOR UPDATE cannot apply to an outer join's null side
    statement = (
        f"SELECT {select_list(TelegramUser, 'u')}, {select_list(BotProfile, 'p')} "  # noqa: S608
        f"FROM {TelegramUser._meta.db_table} u {join} {BotProfile._meta.db_table} p "
        f"ON p.user_id = u.id AND p.bot_id = %s WHERE {condition}"
        + (" FOR UPDATE OF p" if lock else "")
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, [bot_id, *params])
        row = cursor.fetchone()
    if row is None:
        return None, None
    user_fields = len(TelegramUser._meta.concrete_fields)
    user = instance_from_row(TelegramUser, row[:user_fields])
    if row[user_fields] is None:  # no profile for this bot yet
        return user, None
    profile = instance_from_row(BotProfile, row[user_fields:])
    profile.user = user
    return user, profile


def user_ensure(
    *,
    telegram_id: str,
    username: str | None,
    name: str | None,
    telegram_data: Any,
    user_language: str,
    bot_id: str,
) -> tuple[TelegramUser, BotProfile]:
    """Get or create the user and its profile for `bot_id`; an existing one is never modified.

    The usual call finds both with one read and no transaction; creation is race-safe.
    """
    if get_language(bot_id) is None:
        raise invalid_bot(bot_id, code="invalid_target_language", status=400)
    found_user, found_profile = _user_and_profile(
        condition="u.telegram_id = %s", params=[telegram_id], bot_id=bot_id
    )
    if found_user is not None and found_profile is not None:
        return found_user, found_profile
    created = False
    with transaction.atomic():
        user = TelegramUser.objects.filter(telegram_id=telegram_id).first()
        if user is None:
            try:
                with transaction.atomic():
                    user = TelegramUser.objects.create(
                        telegram_id=telegram_id,
                        username=username,
                        name=name,
                        telegram_data=telegram_data,
                        status=UserStatus.FREE,
                    )
                    created = True
            except IntegrityError:
                user = TelegramUser.objects.get(telegram_id=telegram_id)
        profile = _get_or_create_profile(user=user, bot_id=bot_id, user_language=user_language)
    if created:
        metrics.new_users.labels(**_labels(user, profile)).inc()
    return user, profile


def user_update(
    *,
    user_id: int,
    username: str | None,
    name: str | None,
    telegram_data: Any = UNSET,
    user_language: str,
    bot_id: str,
) -> tuple[TelegramUser, BotProfile]:
    """Update names, Telegram data (only when given) and the profile's interface language."""
    user = TelegramUser.objects.filter(pk=user_id).first()
    if user is None:
        raise user_not_found(user_id)
    if get_language(bot_id) is None:
        raise invalid_bot(bot_id, code="invalid_target_language", status=400)
    profile = BotProfile.objects.filter(user=user, bot_id=bot_id).first()
    if profile is None:
        raise profile_not_found(user_id, bot_id)
    user.username, user.name = username, name
    fields = ["username", "name", "updated_at"]
    if telegram_data is not UNSET:
        user.telegram_data = telegram_data
        fields.append("telegram_data")
    profile.user_language = normalise_language_code(user_language)
    with transaction.atomic():
        user.save(update_fields=fields)
        profile.save(update_fields=["user_language", "updated_at"])
    return user, profile


def profile_block(*, user_id: int, bot_id: str, telegram_id: str, reason: str | None) -> None:
    """The user blocked the bot: no notifications until its next `next-action`."""
    user = TelegramUser.objects.filter(pk=user_id).first()
    if user is None or user.telegram_id != telegram_id:
        raise user_not_found(user_id)
    updated = BotProfile.objects.filter(user=user, bot_id=bot_id).exclude(
        status=ProfileStatus.BLOCKED, reason=reason
    )
    if updated.update(status=ProfileStatus.BLOCKED, reason=reason) == 0 and not (
        BotProfile.objects.filter(user=user, bot_id=bot_id).exists()
    ):
        raise profile_not_found(user_id, bot_id, status=400)


def profile_set_session_reminders(
    *, user_id: int, bot_id: str, wants_reminders: bool | None
) -> BotProfile:
    user = TelegramUser.objects.filter(pk=user_id).first()
    if user is None:
        raise user_not_found(user_id)
    profile = BotProfile.objects.filter(user=user, bot_id=bot_id).first()
    if profile is None:
        raise profile_not_found(user_id, bot_id)
    BotProfile.objects.filter(pk=profile.pk).update(wants_session_reminders=wants_reminders)
    profile.wants_session_reminders = wants_reminders
    metrics.set_session_reminder.labels(
        **_labels(user, profile), wants_session_reminders=str(wants_reminders).lower()
    ).inc()
    return profile


def profile_update_preferences(*, user_id: int, bot_id: str, changes: dict[str, Any]) -> BotProfile:
    """Merge bot-specific settings: a value sets its key, `None` removes it, absent keys stay."""
    with transaction.atomic():
        profile = (
            BotProfile.objects.select_for_update().filter(user_id=user_id, bot_id=bot_id).first()
        )
        if profile is None:
            raise profile_not_found(user_id, bot_id)
        stored = dict(profile.settings) if isinstance(profile.settings, dict) else {}
        for key, value in changes.items():
            if value is None:
                stored.pop(key, None)
            else:
                stored[key] = value
        profile.settings = stored
        profile.save(update_fields=["settings", "updated_at"])
    return profile


def _labels(user: TelegramUser, profile: BotProfile) -> dict[str, str]:
    return metrics.user_labels(
        cohort=user.cohort,
        plan=user.plan,
        target_language=profile.bot_id,
        user_language=profile.user_language,
        level=profile.language_level,
    )


# --- the session engine -----------------------------------------------------------------------


@dataclass
class NextAction:
    action: str
    message: str | None = None
    pause: timedelta | None = None
    keyboard: list[dict[str, str]] | None = None
    exercise: dict[str, Any] | None = None
    changed: list[str] = field(default_factory=list, repr=False)


def profile_reset_session(*, profile: BotProfile, now: datetime) -> list[str]:
    """Start a new session on a locked profile (shared with session-unlock payments).

    Returns the fields it set, for the caller's `save(update_fields=...)`.
    """
    profile.exercises_get_in_session = 0
    profile.exercises_get_in_set = 0
    profile.errors_count_in_set = 0
    profile.session_started_at = now
    profile.session_frozen_until = None
    profile.wants_session_reminders = None
    profile.last_long_break_reminder_type_sent = None
    profile.last_long_break_reminder_sent_at = None
    return [
        "exercises_get_in_session",
        "exercises_get_in_set",
        "errors_count_in_set",
        "session_started_at",
        "session_frozen_until",
        "wants_session_reminders",
        "last_long_break_reminder_type_sent",
        "last_long_break_reminder_sent_at",
    ]


def _select_locked_profile(*, user_id: int, bot_id: str) -> BotProfile | None:
    """The profile row locked for this request, with its user, in one statement."""
    _, profile = _user_and_profile(
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
    _get_or_create_profile(user=user, bot_id=bot_id, user_language=language)
    profile = _select_locked_profile(user_id=user_id, bot_id=bot_id)
    assert profile is not None  # just created or found, and profiles are never deleted here
    return profile, True


def _candidate_streak(profile: BotProfile, now: datetime) -> int:
    if profile.last_exercise_at is None:
        return 1
    days = (now.date() - profile.last_exercise_at.date()).days
    if days == 0:
        return profile.current_streak_days
    if days == 1:
        return profile.current_streak_days + 1
    return 1


def _payment_keyboard(language: str) -> list[dict[str, str]]:
    return [
        {"text": render("payment_button_text", language), "callback_data": SESSION_UNLOCK_CALLBACK}
    ]


def profile_next_action(*, user_id: int, bot_id: str, now: datetime) -> NextAction:
    """Decide what the learner gets next and record it atomically."""
    language = get_language(bot_id)
    if language is None:
        raise invalid_bot(bot_id, code="invalid_bot_id", status=422)
    with transaction.atomic():
        profile, created = _locked_profile(user_id=user_id, bot_id=bot_id)
        plan = (profile.user.status, profile.user.status_expires_at)
        result = _next_action(profile=profile, language=language, now=now)
        if result.changed:
            # Bookkeeping of a served exercise: the commit need not wait for the disk
            # (duoniche/rows.py, DATABASE_ASYNC_BOOKKEEPING_COMMIT), unless this transaction also
            # created the profile or ended the user's plan: those wait, like every user write.
            ended_plan = (profile.user.status, profile.user.status_expires_at) != plan
            update_row(profile, [*result.changed, "updated_at"], flush_wait=created or ended_plan)
    return result


def _next_action(*, profile: BotProfile, language: Language, now: datetime) -> NextAction:
    user = profile.user
    changed: list[str] = []
    labels = _labels(user, profile)
    if profile.status == ProfileStatus.BLOCKED:
        profile.status, profile.reason = ProfileStatus.ACTIVE, None
        changed += ["status", "reason"]
    if effective_status(user, now) != user.status:
        user.status, user.status_expires_at, user.status_source = UserStatus.FREE, None, "expired"
        user.save(update_fields=["status", "status_expires_at", "status_source", "updated_at"])
    learning = effective_settings(user=user, profile=profile, language=language, now=now)
    streak = _candidate_streak(profile, now)
    ui_language = profile.user_language

    if profile.session_frozen_until is not None:
        if now < profile.session_frozen_until:
            metrics.frozen_attempts.labels(**labels).inc()
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
        metrics.full_sessions.labels(**labels).inc()
        placeholders: dict[str, Any] = {
            "exercise_num": profile.exercises_get_in_session,
            "pause_time": format_pause_time(pause, language=ui_language),
        }
        key = "congratulations_and_wait"
        if profile.current_streak_days >= 2:
            key = "congratulations_and_wait_streak"
            placeholders["streak_days"] = profile.current_streak_days
        return NextAction(
            action=UserAction.CONGRATULATIONS_AND_WAIT,
            message=render(key, ui_language, **placeholders),
            pause=pause,
            keyboard=_payment_keyboard(ui_language),
            changed=changed,
        )

    if profile.exercises_get_in_set >= learning.exercises_in_set:
        profile.exercises_get_in_set = 0
        profile.errors_count_in_set = 0
        changed += ["exercises_get_in_set", "errors_count_in_set"]
        return NextAction(
            action=UserAction.PRAISE_AND_NEXT_SET,
            message=render_variant("praise_and_next_set", ui_language),
            changed=changed,
        )

    exercise, repetition = exercise_select(profile=profile, learning=learning)
    if exercise is None:
        return NextAction(
            action=UserAction.ERROR,
            message=render("error_getting_new_exercise", ui_language),
            changed=changed,
        )
    profile.exercises_get_in_session += 1
    profile.exercises_get_in_set += 1
    profile.last_exercise_at = now
    profile.last_long_break_reminder_type_sent = None
    profile.last_long_break_reminder_sent_at = None
    profile.current_streak_days = streak
    changed += [
        "exercises_get_in_session",
        "exercises_get_in_set",
        "last_exercise_at",
        "last_long_break_reminder_type_sent",
        "last_long_break_reminder_sent_at",
        "current_streak_days",
    ]
    exercise_labels = metrics.exercise_labels(
        exercise_type=exercise.exercise_type, level=exercise.language_level
    )
    metrics.exercise_sent.labels(**exercise_labels).inc()
    if repetition:
        metrics.exercise_sent_repetition.labels(**exercise_labels).inc()
    return NextAction(
        action=UserAction.NEW_EXERCISE,
        exercise=exercise_for_learner(
            exercise, ui_language=ui_language, language=language, alphabet=learning.alphabet
        ),
        changed=changed,
    )


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


# --- selection --------------------------------------------------------------------------------


def _pick_level(level: str) -> str:
    levels = list(LanguageLevel.values)
    offset = random.choices(list(LEVEL_OFFSETS), weights=list(LEVEL_OFFSETS.values()))[0]
    return levels[min(max(levels.index(level) + offset, 0), len(levels) - 1)]


def _pick_type(learning: EffectiveSettings, language: Language) -> str:
    distribution = learning.exercise_type_distribution
    if distribution and any(weight > 0 for weight in distribution.values()):
        return random.choices(list(distribution), weights=list(distribution.values()))[0]
    return random.choice(language.generated_types)


def exercise_select(
    *, profile: BotProfile, learning: EffectiveSettings
) -> tuple[Exercise | None, bool]:
    """The next exercise: new ones first, then mistakes, then the least recent.

    Returns (exercise, whether it is a repetition).
    """
    language = get_language(profile.bot_id)
    assert language is not None
    topics = [t for t in ExerciseTopic.values if t not in learning.exclude_topics] or ["general"]
    level = _pick_level(profile.language_level)
    exercise_type = _pick_type(learning, language)
    seen = SqlCondition(
        f"EXISTS (SELECT 1 FROM {ExerciseAttempt._meta.db_table} a "  # noqa: S608 (a table name)
        "WHERE a.user_id = %s AND a.exercise_id = e.id)",
        (profile.user_id,),
    )
    steps: list[dict[str, str]] = [
        {"exercise_type": exercise_type, "level": level, "topic": random.choice(topics)},
        {"exercise_type": exercise_type},
        {},
    ]
    for filters in steps:
        exercise = exercise_pick_random(
            bot_id=profile.bot_id,
            exercise_type=filters.get("exercise_type"),
            level=filters.get("level"),
            topic=filters.get("topic"),
            exclude_topics=learning.exclude_topics,
            exclude=seen,
        )
        if exercise is not None:
            return exercise, False
    mine = ExerciseAttempt.objects.filter(
        user_id=profile.user_id,
        exercise__exercise_language=profile.bot_id,
        exercise__status=ExerciseStatus.PUBLISHED,
    ).exclude(exercise__topic__in=learning.exclude_topics)
    mistakes = list(mine.filter(is_correct=False).values_list("exercise_id", flat=True).distinct())
    if mistakes:
        return Exercise.objects.get(pk=random.choice(mistakes)), True
    oldest = (
        mine.values("exercise_id")
        .annotate(last_seen=Max("created_at"))
        .order_by("last_seen", "exercise_id")
        .values_list("exercise_id", flat=True)
        .first()
    )
    if oldest is not None:
        return Exercise.objects.get(pk=oldest), True
    return None, False


# --- staff operations (admin) -----------------------------------------------------------------


def profile_staff_reset_session(*, profile_id: int, now: datetime) -> BotProfile:
    """The admin's "reset session": start a new session now.

    The same reset as a session-unlock payment, on the profile row locked for the write. The next
    call of the bot serves a fresh session: counters zeroed, no freeze, reminder state cleared.
    """
    with transaction.atomic():
        profile = BotProfile.objects.select_for_update().filter(pk=profile_id).first()
        if profile is None:
            raise ApplicationError(
                f"Bot profile {profile_id} was not found.", code="profile_not_found", status=404
            )
        fields = profile_reset_session(profile=profile, now=now)
        profile.save(update_fields=[*fields, "updated_at"])
    logger.info("session of profile %s reset by staff", profile_id)
    return profile
