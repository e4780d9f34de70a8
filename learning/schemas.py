"""Request and response schemas of the learner endpoints (Pydantic, lax like the old service)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, StringConstraints
from pydantic_core import PydanticCustomError

from duoniche.api.validation import Id, PositiveId, Schema, StoredJson, TelegramId
from duoniche.enums import LanguageLevel
from learning.effective_settings import time_zone_name

Name = Annotated[str, StringConstraints(max_length=255)]
UserLanguage = Annotated[str, StringConstraints(min_length=1, max_length=16)]
BotIdText = Annotated[str, StringConstraints(min_length=1, max_length=50)]
Alphabet = Annotated[str, StringConstraints(pattern=r"^(latin|cyrillic)$")]


def _time_zone(value: str) -> str:
    try:
        return time_zone_name(value)
    except ValueError:
        raise PydanticCustomError(
            "time_zone_unknown", "Input should be an IANA time zone name such as Europe/Sofia"
        ) from None


TimeZone = Annotated[str, StringConstraints(max_length=64), AfterValidator(_time_zone)]


class UserIdPath(Schema):
    """PUT /users/{user_id}: no lower bound (an id that does not exist is a 404)."""

    user_id: Id


class PositiveUserIdPath(Schema):
    user_id: PositiveId


class UserBotPath(Schema):
    user_id: PositiveId
    bot_id: str


class TelegramIdPath(Schema):
    telegram_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class BotIdQuery(Schema):
    bot_id: str | None = None


class UserEnsureRequest(Schema):
    telegram_id: TelegramId
    username: Name | None
    name: Name | None
    user_language: UserLanguage
    target_language: BotIdText
    telegram_data: StoredJson | None = None


class UserUpdateRequest(Schema):
    user_id: Id
    telegram_id: TelegramId
    username: Name | None
    name: Name | None
    user_language: UserLanguage
    target_language: BotIdText
    telegram_data: StoredJson | None = None


class BlockRequest(Schema):
    telegram_id: TelegramId
    reason: Annotated[str, StringConstraints(max_length=500)] | None = None


class SessionRemindersRequest(Schema):
    wants_reminders: bool | None = None
    language_level: LanguageLevel | None = None
    alphabet: Alphabet | None = None


class PreferencesRequest(Schema):
    alphabet: Alphabet | None = None
    time_zone: TimeZone | None = None


class UserResponse(BaseModel):
    user_id: int
    telegram_id: str
    username: str | None
    name: str | None
    user_language: str
    telegram_data: dict[str, Any] | None
    language_level: str | None
    cohort: str | None
    plan: str | None
    status: Literal["free", "trial", "premium", "custom"]
    status_expires_at: datetime | None


class StatusOk(BaseModel):
    status: Literal["ok"]


class SessionRemindersResponse(BaseModel):
    user_id: int
    bot_id: str
    wants_session_reminders: bool
    status: Literal["ok"]


class PreferencesResponse(BaseModel):
    user_id: int
    bot_id: str
    settings: dict[str, Any]


class Button(BaseModel):
    text: str
    callback_data: str


class ExerciseSchema(BaseModel):
    exercise_id: int
    exercise_type: Literal[
        "fill_in_the_blank", "choose_sentence", "choose_accent", "story_comprehension"
    ]
    exercise_language: str
    language_level: str
    topic: str
    exercise_text: str
    ui_template: Literal["fill_in_the_blank", "choose", "audio_choose"]
    data: dict[str, Any]


class NextActionSchema(BaseModel):
    exercise: ExerciseSchema | None = None
    action: Literal[
        "new_exercise", "praise_and_next_set", "congratulations_and_wait", "limit_reached", "error"
    ]
    message: str | None = None
    pause: str | None = Field(default=None, description="ISO-8601 duration, e.g. PT3H")
    keyboard: list[Button] | None = None


class ReportStatusResponse(BaseModel):
    current_report_status: Literal["PENDING", "GENERATING", "GENERATED", "SENT", "FAILED"]
