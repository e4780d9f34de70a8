"""Reads about learners."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import F, FloatField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce

from duoniche.api.errors import ApplicationError
from duoniche.rows import instance_from_row, select_list
from learning.errors import profile_not_found, user_not_found
from learning.models import BotProfile, TelegramUser


def telegram_user_require(*, telegram_id: str) -> None:
    """404 `user_not_found` unless a user has this Telegram id."""
    if not TelegramUser.objects.filter(telegram_id=telegram_id).exists():
        raise user_not_found(telegram_id)


def profile_for_telegram_id(*, telegram_id: str, bot_id: str | None) -> BotProfile:
    """The user's profile for `bot_id`, or without it the most recently practised one (then the
    oldest), with the user loaded."""
    profiles = BotProfile.objects.select_related("user").filter(user__telegram_id=telegram_id)
    if bot_id is not None:
        profiles = profiles.filter(bot_id=bot_id)
    profile = profiles.order_by(F("last_exercise_at").desc(nulls_last=True), "id").first()
    if profile is not None:
        return profile
    telegram_user_require(telegram_id=telegram_id)
    if bot_id is not None:
        raise profile_not_found(f"with Telegram id {telegram_id}", bot_id)
    raise ApplicationError(
        f"User with Telegram id {telegram_id} has no bot profile; pass bot_id to choose one.",
        code="profile_not_found",
        status=404,
    )


def user_with_profile(
    *, condition: str, params: list[Any], bot_id: str, lock: bool = False
) -> tuple[TelegramUser | None, BotProfile | None]:
    """A user (`condition` on alias `u`) with its profile for `bot_id`, in one statement.

    The profile is None when the user has none for that bot, except with `lock`: then only a user
    with a profile is found, and the profile row stays locked until the transaction ends. Written
    out (parameterised) because the bots call this before every exercise and session, and the
    ORM's compilation of the reads cost more than running them.
    """
    row = _user_profile_row(condition=condition, params=params, bot_id=bot_id, lock=lock)
    if row is None:
        return None, None
    return _user_and_profile(row)


def profile_with_version(*, user_id: int, bot_id: str) -> tuple[BotProfile, str] | None:
    """A learner's profile with its user, not locked, and the row's version: its `xmin`, which
    every write of the row changes. A write that names it lands only if no other came between
    (`learning.profiles.profile_record_next_action`). None: no profile for that bot yet."""
    row = _user_profile_row(
        condition="u.id = %s", params=[user_id], bot_id=bot_id, extra="p.xmin::text"
    )
    if row is None:
        return None
    _, profile = _user_and_profile(row[:-1])
    return (profile, row[-1]) if profile is not None else None


def _user_profile_row(
    *, condition: str, params: list[Any], bot_id: str, lock: bool = False, extra: str = ""
) -> tuple[Any, ...] | None:
    join = "JOIN" if lock else "LEFT JOIN"  # FOR UPDATE cannot apply to an outer join's null side
    statement = (
        f"SELECT {select_list(TelegramUser, 'u')}, {select_list(BotProfile, 'p')}"  # noqa: S608
        + (f", {extra}" if extra else "")
        + f" FROM {TelegramUser._meta.db_table} u {join} {BotProfile._meta.db_table} p "
        f"ON p.user_id = u.id AND p.bot_id = %s WHERE {condition}"
        + (" FOR UPDATE OF p" if lock else "")
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, [bot_id, *params])
        row: tuple[Any, ...] | None = cursor.fetchone()
    return row


def _user_and_profile(row: tuple[Any, ...]) -> tuple[TelegramUser, BotProfile | None]:
    user_fields = len(TelegramUser._meta.concrete_fields)
    user = instance_from_row(TelegramUser, row[:user_fields])
    if row[user_fields] is None:  # no profile for this bot yet
        return user, None
    profile = instance_from_row(BotProfile, row[user_fields:])
    profile.user = user
    return user, profile


def attempt_weight(bot_id: Any) -> Coalesce:
    """An attempt's weight: its learner's profile rating in `bot_id`, or the default rating.

    `bot_id` is a value or an `OuterRef` to the exercise's language. Registered with `exercises`
    (the moderation queue's error rate) from this app's `ready()`.
    """
    profiles = BotProfile.objects.filter(user=OuterRef("user"), bot_id=bot_id)
    return Coalesce(
        Subquery(profiles.values("rating")[:1], output_field=FloatField()),
        Value(float(settings.QUALITY_DEFAULT_RATING)),
        output_field=FloatField(),
    )
