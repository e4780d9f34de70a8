"""Writes of bot profiles: the one write path of `BotProfile` and of its `LevelChange` records.

Every interface that changes a profile calls a function here: the API views, the session engine
(`learning.sessions`), validation's counter, the jobs (ratings, weekly reports, long-break
reminders), payments (session unlock) and the admin. The hot-path statements that stay written out
for speed (validation's error counter, the long-break follow-up) live here too, as services.
Each function checks what it can before its first write; rows that concurrent requests change are
locked (`select_for_update`) and counters use SQL arithmetic.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from duoniche import metrics
from duoniche.enums import LevelChangeSource, ProfileStatus
from duoniche.language_tags import normalise_language_code
from duoniche.rows import Statement, insert_or_get_statement, instance_from_row, update_row
from learning.errors import profile_id_not_found, profile_not_found, user_not_found
from learning.models import BotProfile, LevelChange, TelegramUser, WeeklyReport

logger = logging.getLogger(__name__)

#: Profiles per UPDATE of the quality job's ratings.
RATING_BATCH_SIZE = 1000

#: What staff may change on a profile (the rest is the bot's and the jobs' state).
STAFF_FIELDS = frozenset({"user_language", "language_level", "status", "reason", "settings"})


def metric_labels(user: TelegramUser, profile: BotProfile) -> dict[str, str]:
    """The learner labels of the business metrics."""
    return metrics.user_labels(
        cohort=user.cohort,
        plan=user.plan,
        target_language=profile.bot_id,
        user_language=profile.user_language,
        level=profile.language_level,
    )


# --- creation -----------------------------------------------------------------------------------


def _profile_defaults(user_language: str) -> dict[str, Any]:
    return {
        "user_language": normalise_language_code(user_language),
        "language_level": settings.DEFAULT_LANGUAGE_LEVEL,
        "status": ProfileStatus.ACTIVE,
    }


def profile_insert_or_get(
    *, bot_id: str, user_language: str, user: TelegramUser | None = None, user_key: str = ""
) -> Statement:
    """The statement that creates the profile of `user` in `bot_id`, or returns the one it has
    (`insert_or_get_statement`). `user_key`: an SQL expression of the user's key instead, for a
    user created in the same statement (`learning.users.user_ensure`)."""
    profile = BotProfile(user=user, bot_id=bot_id, **_profile_defaults(user_language))
    return insert_or_get_statement(
        profile, conflict=("user", "bot_id"), computed={"user_id": user_key} if user_key else None
    )


def profile_get_or_create(*, user: TelegramUser, bot_id: str, user_language: str) -> BotProfile:
    """The profile of `user` in `bot_id`, created if it has none: one insert-or-get statement, so
    concurrent callers get the same row. For callers that found none: an existing row is
    rewritten unchanged to be returned (and stays locked until the transaction ends)."""
    statement = profile_insert_or_get(bot_id=bot_id, user_language=user_language, user=user)
    with connection.cursor() as cursor:
        cursor.execute(statement.sql, statement.params)
        row = cursor.fetchone()
    profile = instance_from_row(BotProfile, row[:-1])  # the last column is `inserted`
    profile.user = user
    return profile


# --- the bot's calls (docs/api.md) --------------------------------------------------------------


def profile_set_user_language(*, profile: BotProfile, user_language: str) -> None:
    """The interface language of `profile` as the bot reports it (normalised)."""
    profile.user_language = normalise_language_code(user_language)
    profile.save(update_fields=["user_language", "updated_at"])


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


def profile_unblock(*, profile_id: int) -> bool:
    """Staff lift a block: the profile is active again, the reason cleared.

    The same change the bot's next `next-action` makes (docs/api.md), so notifications resume.
    Returns False when the profile was not blocked (nothing written).
    """
    with transaction.atomic():
        profile = BotProfile.objects.select_for_update().filter(pk=profile_id).first()
        if profile is None:
            raise profile_id_not_found(profile_id)
        if profile.status != ProfileStatus.BLOCKED:
            return False
        profile.status, profile.reason = ProfileStatus.ACTIVE, None
        profile.save(update_fields=["status", "reason", "updated_at"])
    logger.info("profile %s unblocked by staff", profile_id)
    return True


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
        **metric_labels(user, profile), wants_session_reminders=str(wants_reminders).lower()
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


# --- sessions -----------------------------------------------------------------------------------


def profile_reset_session(*, profile: BotProfile, now: datetime) -> list[str]:
    """Start a new session on a locked profile (shared with session-unlock payments).

    Returns the fields it set, for the caller's `save(update_fields=...)`.
    """
    profile.exercises_get_in_session = 0
    profile.exercises_get_in_set = 0
    profile.errors_count_in_set = 0
    profile.reviews_get_in_set = 0
    profile.session_started_at = now
    profile.session_frozen_until = None
    profile.wants_session_reminders = None
    profile.last_long_break_reminder_type_sent = None
    profile.last_long_break_reminder_sent_at = None
    return [
        "exercises_get_in_session",
        "exercises_get_in_set",
        "errors_count_in_set",
        "reviews_get_in_set",
        "session_started_at",
        "session_frozen_until",
        "wants_session_reminders",
        "last_long_break_reminder_type_sent",
        "last_long_break_reminder_sent_at",
    ]


def profile_record_next_action(
    *, profile: BotProfile, fields: list[str], flush_wait: bool, version: str | None = None
) -> bool:
    """Write the fields the session engine changed on the profile (one UPDATE by key).

    `flush_wait=False`: bookkeeping of a served exercise, whose commit need not wait for the disk
    (duoniche/rows.py, DATABASE_ASYNC_BOOKKEEPING_COMMIT). `version`: the row version the profile
    was read at, unlocked (`learning.selectors.profile_with_version`); nothing is written if
    another write came since. Returns whether the profile was written.
    """
    return update_row(profile, [*fields, "updated_at"], flush_wait=flush_wait, version=version)


def profile_change_level(
    *, profile: BotProfile, to_level: str, source: str, reason: str, now: datetime
) -> list[str]:
    """Move a locked profile to `to_level` and record why (a `LevelChange`).

    The profile's fields are set, not saved: returns them for the caller's one UPDATE (the session
    engine's `profile_record_next_action`, or staff's save).
    """
    LevelChange.objects.create(
        profile=profile,
        from_level=profile.language_level,
        to_level=to_level,
        source=source,
        reason=reason[:500],
        created_at=now,
    )
    logger.info(
        "profile %s level %s -> %s (%s): %s",
        profile.pk,
        profile.language_level,
        to_level,
        source,
        reason,
    )
    profile.language_level = to_level
    profile.level_changed_at = now
    return ["language_level", "level_changed_at"]


def profile_unlock_session(*, user: TelegramUser, bot_id: str, now: datetime) -> BotProfile:
    """A paid session unlock: a new session now, on the profile row locked for the payment.

    Runs inside the payment's transaction; a missing profile rolls the payment back (400).
    """
    profile = BotProfile.objects.select_for_update().filter(user=user, bot_id=bot_id).first()
    if profile is None:  # deleted since the payment's check
        raise profile_not_found(user.pk, bot_id, status=400)
    fields = profile_reset_session(profile=profile, now=now)
    profile.save(update_fields=[*fields, "updated_at"])
    return profile


def profile_answer_counted(
    *, profile_id: int, wrong: bool, review_due: datetime | None
) -> Statement | None:
    """The statement that counts an answer on the profile (validation's hot path), if any.

    A wrong answer counts in the set's errors; an answer whose card is a mistake (`review_due`)
    brings the profile's `review_due_at` forward to that time when it is earlier. Returned, not
    run: validation sends it with the attempt's INSERT as one statement.
    """
    assignments: list[str] = []
    params: list[Any] = []
    if wrong:
        assignments.append("errors_count_in_set = errors_count_in_set + 1")
    if review_due is not None:
        assignments.append("review_due_at = LEAST(COALESCE(review_due_at, %s), %s)")
        params += [review_due, review_due]
    if not assignments:
        return None
    return Statement(
        f"UPDATE {BotProfile._meta.db_table} "  # noqa: S608 (a table name)
        f"SET {', '.join(assignments)} WHERE id = %s",
        (*params, profile_id),
    )


# --- jobs ---------------------------------------------------------------------------------------


def profiles_set_ratings(*, ratings: dict[tuple[int, str], float], now: datetime) -> int:
    """Bulk-update `rating` and `rating_last_calculated_at` (nothing else) of the rated profiles."""
    if not ratings:
        return 0
    profiles = [
        BotProfile(id=profile_id, rating=ratings[(user_id, bot_id)], rating_last_calculated_at=now)
        for profile_id, user_id, bot_id in BotProfile.objects.values_list("id", "user_id", "bot_id")
        if (user_id, bot_id) in ratings
    ]
    BotProfile.objects.bulk_update(
        profiles, ["rating", "rating_last_calculated_at"], batch_size=RATING_BATCH_SIZE
    )
    return len(profiles)


def profiles_mark_report_generated(*, week_start: date, now: datetime) -> int:
    """`last_report_generated_at = now` on the profiles whose report of `week_start` was made now.

    One set-based UPDATE of that field alone (the weekly job calls it in its insert's transaction).
    """
    created_now = WeeklyReport.objects.filter(
        user_id=OuterRef("user_id"),
        bot_id=OuterRef("bot_id"),
        week_start_date=week_start,
        generated_at=now,
    )
    return BotProfile.objects.filter(Exists(created_now)).update(last_report_generated_at=now)


def profiles_mark_long_break_sent(*, sent: list[tuple[int, datetime, str]], now: datetime) -> int:
    """Record reminders `(profile id, last_exercise_at read, step)`; the number of rows written.

    Only the two reminder fields, and only where `last_exercise_at` is still the value read: an
    exercise served meanwhile reset them, and that wins. `updated_at` is not touched.
    One statement, joined to the arrays of values.
    """
    if not sent:
        return 0
    quote = connection.ops.quote_name
    meta = BotProfile._meta
    table = quote(meta.db_table)
    pk = quote(meta.pk.column)
    last_exercise = quote(meta.get_field("last_exercise_at").column)
    type_sent = quote(meta.get_field("last_long_break_reminder_type_sent").column)
    sent_at = quote(meta.get_field("last_long_break_reminder_sent_at").column)
    # Identifiers come from the model's metadata, quoted; every value is a parameter.
    statement = (
        f"UPDATE {table} AS profile SET {type_sent} = sent.step, {sent_at} = %s "  # noqa: S608
        "FROM unnest(%s::bigint[], %s::timestamptz[], %s::text[]) "
        "AS sent (id, last_exercise_at, step) "
        f"WHERE profile.{pk} = sent.id AND profile.{last_exercise} = sent.last_exercise_at"
    )
    ids, last_exercises, steps = (list(column) for column in zip(*sent, strict=True))
    with connection.cursor() as cursor:
        cursor.execute(statement, [now, ids, last_exercises, steps])
        return int(cursor.rowcount)


# --- staff (admin) ------------------------------------------------------------------------------


def profile_staff_reset_session(*, profile_id: int, now: datetime) -> BotProfile:
    """The admin's "reset session": start a new session now.

    The same reset as a session-unlock payment, on the profile row locked for the write. The next
    call of the bot serves a fresh session: counters zeroed, no freeze, reminder state cleared.
    """
    with transaction.atomic():
        profile = BotProfile.objects.select_for_update().filter(pk=profile_id).first()
        if profile is None:
            raise profile_id_not_found(profile_id)
        fields = profile_reset_session(profile=profile, now=now)
        profile.save(update_fields=[*fields, "updated_at"])
    logger.info("session of profile %s reset by staff", profile_id)
    return profile


def profile_staff_update(
    *, profile_id: int, changes: dict[str, Any], staff_name: str = ""
) -> BotProfile:
    """Staff edit a profile: only the fields given (of `STAFF_FIELDS`), on the locked row.

    A new level is recorded as a staff `LevelChange` (by `staff_name`), and restarts the level
    policy's window.

    The session counters move under the bot's requests meanwhile, so only what staff changed is
    written. The caller validated the values (the admin form, with the API's rules).
    """
    unknown = set(changes) - STAFF_FIELDS
    if unknown:
        raise ValueError(f"not editable by staff: {', '.join(sorted(unknown))}")
    with transaction.atomic():
        profile = BotProfile.objects.select_for_update().filter(pk=profile_id).first()
        if profile is None:
            raise profile_id_not_found(profile_id)
        if not changes:
            return profile
        fields = list(changes)
        level = changes.get("language_level")
        if level is not None and level != profile.language_level:
            fields += profile_change_level(
                profile=profile,
                to_level=level,
                source=LevelChangeSource.STAFF,
                reason=f"set by {staff_name}" if staff_name else "set by staff",
                now=timezone.now(),
            )
        for name, value in changes.items():
            setattr(profile, name, value)
        if "user_language" in changes:
            profile.user_language = normalise_language_code(profile.user_language)
        profile.save(update_fields=[*dict.fromkeys(fields), "updated_at"])
    logger.info("profile %s changed by staff: %s", profile_id, ", ".join(sorted(changes)))
    return profile


def profiles_delete(*, profile_ids: list[int]) -> int:
    """Staff delete bot profiles (the learner's attempts and reports stay with the user).

    The bot's next call for that user and bot starts a new profile. Returns how many went.
    """
    deleted, _ = BotProfile.objects.filter(pk__in=profile_ids).delete()
    logger.info("%s profile(s) deleted by staff", deleted)
    return deleted
