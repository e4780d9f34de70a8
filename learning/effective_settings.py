"""Effective learning settings for (user, bot), computed per request from rows already loaded.

Plan template by effective status, the language's type distribution, then the user's and the
profile's overrides. Unknown keys and invalid values are ignored key by key with a warning, never a
500. There is deliberately no cache: the inputs are on rows the request has loaded anyway,
so a cache could only serve stale plans (Fix: the previous service's cache outlived status changes).
"""

from __future__ import annotations

import logging
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from django.conf import settings
from django.utils.translation import gettext_lazy

from duoniche.enums import Alphabet, ExerciseTopic, ExerciseType, UserStatus
from duoniche.languages import Language
from learning.models import BotProfile, TelegramUser

logger = logging.getLogger(__name__)

#: Plans whose cooldown after a full session is zero.
NO_COOLDOWN_STATUSES = frozenset({UserStatus.TRIAL, UserStatus.PREMIUM})


@dataclass(frozen=True)
class EffectiveSettings:
    session_exercise_limit: int
    min_session_interval_minutes: int
    exercises_in_set: int
    available_exercise_types: tuple[str, ...]
    exercise_type_distribution: dict[str, float]
    exclude_topics: frozenset[str]
    alphabet: str | None
    reviews_in_set: int
    adaptive_level: bool
    time_zone: str | None


def effective_status(user: TelegramUser, now: datetime) -> str:
    """The user's status, as `free` once a non-free status has expired."""
    if (
        user.status != UserStatus.FREE
        and user.status_expires_at is not None
        and user.status_expires_at <= now
    ):
        return UserStatus.FREE
    return user.status


def _int_at_least(minimum: int) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError
        return value

    return check


def _types(value: Any) -> Any:
    if not isinstance(value, list) or not all(v in ExerciseType.values for v in value):
        raise ValueError
    return tuple(value)


def _distribution(value: Any) -> Any:
    if not isinstance(value, dict) or not all(
        key in ExerciseType.values
        and not isinstance(weight, bool)
        and isinstance(weight, int | float)
        and weight >= 0
        for key, weight in value.items()
    ):
        raise ValueError
    return {key: float(weight) for key, weight in value.items()}


def _topics(value: Any) -> Any:
    if not isinstance(value, list) or not all(v in ExerciseTopic.values for v in value):
        raise ValueError
    return frozenset(value)


def _strings(value: Any) -> Any:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError
    return value


def _alphabet(value: Any) -> Any:
    if value not in Alphabet.values:
        raise ValueError
    return value


def _flag(value: Any) -> Any:
    if not isinstance(value, bool):
        raise ValueError
    return value


def time_zone_name(value: Any) -> str:
    """`value` if it names an IANA time zone (`Europe/Sofia`); ValueError otherwise."""
    if not isinstance(value, str) or not 0 < len(value) <= 64 or value not in _zone_names():
        raise ValueError
    return value


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


SETTING_VALIDATORS: dict[str, Callable[[Any], Any]] = {
    "session_exercise_limit": _int_at_least(1),
    "min_session_interval_minutes": _int_at_least(0),
    "exercises_in_set": _int_at_least(1),
    "available_exercise_types": _types,
    "exercise_type_distribution": _distribution,
    "exclude_topics": _topics,
    "allowed_languages": _strings,
    "alphabet": _alphabet,
    "reviews_in_set": _int_at_least(0),
    "adaptive_level": _flag,
    "time_zone": time_zone_name,
}

#: What each known key accepts, in words (the admin shows it next to a refused value).
SETTING_RULES: dict[str, Any] = {
    "session_exercise_limit": gettext_lazy("should be a whole number, at least 1"),
    "min_session_interval_minutes": gettext_lazy("should be a whole number, at least 0"),
    "exercises_in_set": gettext_lazy("should be a whole number, at least 1"),
    "available_exercise_types": gettext_lazy("should be a list of exercise types"),
    "exercise_type_distribution": gettext_lazy("should map exercise types to weights of 0 or more"),
    "exclude_topics": gettext_lazy("should be a list of topics"),
    "allowed_languages": gettext_lazy("should be a list of texts"),
    "alphabet": gettext_lazy("should be one of the alphabets"),
    "reviews_in_set": gettext_lazy("should be a whole number, at least 0"),
    "adaptive_level": gettext_lazy("should be true or false"),
    "time_zone": gettext_lazy("should be a time zone name such as Europe/Sofia"),
}


@dataclass(frozen=True)
class SettingsCheck:
    """Stored settings against the keys effective settings read (`valid_overrides`' rules)."""

    invalid: dict[str, Any]  # key → what it should be
    unknown: list[str]  # keys nothing reads: ignored when the settings are applied


def settings_check(stored: dict[str, Any]) -> SettingsCheck:
    """Which keys of `stored` would be ignored, and why: the rules `valid_overrides` applies."""
    invalid: dict[str, Any] = {}
    unknown: list[str] = []
    for key, value in stored.items():
        validator = SETTING_VALIDATORS.get(key)
        if validator is None:
            unknown.append(key)
            continue
        try:
            validator(value)
        except ValueError:
            invalid[key] = SETTING_RULES[key]
    return SettingsCheck(invalid=invalid, unknown=unknown)


def valid_overrides(stored: Any, *, user_id: int, bot_id: str, source: str) -> dict[str, Any]:
    """The recognised, valid keys of stored settings; the rest is logged and ignored."""
    if stored is None:
        return {}
    if not isinstance(stored, dict):
        logger.warning("ignoring %s of user %s in %s: not an object", source, user_id, bot_id)
        return {}
    result: dict[str, Any] = {}
    for key, value in stored.items():
        validator = SETTING_VALIDATORS.get(key)
        if validator is None:
            logger.warning(
                "ignoring unknown key %r in %s of user %s in %s", key, source, user_id, bot_id
            )
            continue
        try:
            result[key] = validator(value)
        except ValueError:
            logger.warning(
                "ignoring invalid value of %r in %s of user %s in %s", key, source, user_id, bot_id
            )
    return result


def effective_settings(
    *, user: TelegramUser, profile: BotProfile, language: Language, now: datetime
) -> EffectiveSettings:
    status = effective_status(user, now)
    interval = int(settings.DELTA_BETWEEN_SESSIONS.total_seconds() // 60)
    values: dict[str, Any] = {
        "session_exercise_limit": settings.EXERCISES_IN_SET * settings.SETS_IN_SESSION,
        "min_session_interval_minutes": 0 if status in NO_COOLDOWN_STATUSES else interval,
        "exercises_in_set": settings.EXERCISES_IN_SET,
        "available_exercise_types": tuple(ExerciseType.values),
        "exclude_topics": frozenset(),
        "alphabet": None,
        "reviews_in_set": settings.REVIEWS_IN_SET,
        "adaptive_level": True,
        "time_zone": None,
    }
    overrides = valid_overrides(
        user.custom_settings, user_id=user.pk, bot_id=profile.bot_id, source="custom_settings"
    )
    overrides.update(
        valid_overrides(
            profile.settings, user_id=user.pk, bot_id=profile.bot_id, source="profile settings"
        )
    )
    available = overrides.get("available_exercise_types", values["available_exercise_types"])
    values["exercise_type_distribution"] = {
        type_name: weight
        for type_name, weight in language.type_distribution.items()
        if type_name in available
    }
    overrides.pop("allowed_languages", None)
    values.update(overrides)
    return EffectiveSettings(**values)
