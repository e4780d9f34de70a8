"""Reads about learners."""

from __future__ import annotations

from django.db.models import F

from duoniche.api.errors import ApplicationError
from learning.models import BotProfile, TelegramUser
from learning.services import profile_not_found, user_not_found


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
