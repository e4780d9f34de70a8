"""Writes of Telegram users: the one write path of `TelegramUser` (docs/api.md).

The user's profile in a bot is written through `learning.profiles`; these functions create and
update the user row and call it for the profile.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import connection, transaction

from duoniche import metrics
from duoniche.enums import UserStatus
from duoniche.languages import get_language
from duoniche.rows import insert_or_get_statement, instance_from_row, select_list
from learning.errors import invalid_bot, profile_not_found, user_not_found
from learning.models import BotProfile, TelegramUser
from learning.profiles import (
    metric_labels,
    profile_get_or_create,
    profile_insert_or_get,
    profile_set_user_language,
)
from learning.selectors import user_with_profile

logger = logging.getLogger(__name__)

UNSET: Any = object()

#: What staff may change on a user (the rest comes from Telegram and the bot).
STAFF_FIELDS = frozenset(
    {
        "username",
        "name",
        "cohort",
        "plan",
        "status",
        "status_expires_at",
        "status_source",
        "custom_settings",
    }
)


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

    The usual call finds both with one read. Otherwise one more statement inserts what is missing
    or returns what a concurrent call just created (`insert_or_get_statement`): two round trips
    for a new learner, atomic without a transaction, and 20 simultaneous first calls give one
    user and one profile.
    """
    if get_language(bot_id) is None:
        raise invalid_bot(bot_id, code="invalid_target_language", status=400)
    found_user, found_profile = user_with_profile(
        condition="u.telegram_id = %s", params=[telegram_id], bot_id=bot_id
    )
    if found_user is not None and found_profile is not None:
        return found_user, found_profile
    if found_user is not None:
        return found_user, profile_get_or_create(
            user=found_user, bot_id=bot_id, user_language=user_language
        )
    user_part = insert_or_get_statement(
        TelegramUser(
            telegram_id=telegram_id,
            username=username,
            name=name,
            telegram_data=telegram_data,
            status=UserStatus.FREE,
        ),
        conflict=("telegram_id",),
    )
    profile_part = profile_insert_or_get(
        bot_id=bot_id, user_language=user_language, user_key="(SELECT id FROM new_user)"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH new_user AS ({user_part.sql}), new_profile AS ({profile_part.sql}) "  # noqa: S608
            f"SELECT {select_list(TelegramUser, 'new_user')}, new_user.inserted, "
            f"{select_list(BotProfile, 'new_profile')} FROM new_user, new_profile",
            [*user_part.params, *profile_part.params],
        )
        row = cursor.fetchone()
    user_fields = len(TelegramUser._meta.concrete_fields)
    user = instance_from_row(TelegramUser, row[:user_fields])
    profile = instance_from_row(BotProfile, row[user_fields + 1 :])
    profile.user = user
    if row[user_fields]:  # this call created the user
        metrics.new_users.labels(**metric_labels(user, profile)).inc()
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
    with transaction.atomic():
        user.save(update_fields=fields)
        profile_set_user_language(profile=profile, user_language=user_language)
    return user, profile


def user_expire_plan(*, user: TelegramUser) -> None:
    """The user's paid or trial status has expired: back to free (the session engine's check)."""
    user.status, user.status_expires_at, user.status_source = UserStatus.FREE, None, "expired"
    user.save(update_fields=["status", "status_expires_at", "status_source", "updated_at"])


def user_staff_update(*, user_id: int, changes: dict[str, Any]) -> TelegramUser:
    """Staff edit a user: only the fields given (of `STAFF_FIELDS`), on the locked row.

    The caller validated the values (the admin form, with the API's rules for `custom_settings`).
    """
    unknown = set(changes) - STAFF_FIELDS
    if unknown:
        raise ValueError(f"not editable by staff: {', '.join(sorted(unknown))}")
    with transaction.atomic():
        user = TelegramUser.objects.select_for_update().filter(pk=user_id).first()
        if user is None:
            raise user_not_found(user_id)
        if not changes:
            return user
        for name, value in changes.items():
            setattr(user, name, value)
        user.save(update_fields=[*changes, "updated_at"])
    logger.info("user %s changed by staff: %s", user_id, ", ".join(sorted(changes)))
    return user


def users_delete(*, user_ids: list[int]) -> int:
    """Staff forget learners: the users with their profiles, attempts, reports and notifications.

    A user with payments is refused by the database (payments are kept for accounting): the
    admin's delete confirmation lists them as protected before anything is deleted.
    Returns how many users were deleted.
    """
    deleted, by_model = TelegramUser.objects.filter(pk__in=user_ids).delete()
    count = by_model.get(TelegramUser._meta.label, 0)
    logger.info("%s user(s) deleted by staff (%s rows in all)", count, deleted)
    return count
