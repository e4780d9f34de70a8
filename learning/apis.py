"""Learner endpoints of the bot API v1: users, profiles, preferences and the next action."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from duoniche.api.schema import BOT_ID, error_responses, id_parameter, text_parameter
from duoniche.api.views import BotAPIView, drop_none, legacy_endpoint_called
from duoniche.durations import format_iso_duration
from duoniche.languages import get_language
from learning import schemas
from learning.effective_settings import effective_status, valid_overrides
from learning.errors import invalid_bot
from learning.models import BotProfile, TelegramUser
from learning.profiles import (
    profile_block,
    profile_set_session_reminders,
    profile_update_preferences,
)
from learning.selectors import profile_for_telegram_id, telegram_user_require
from learning.sessions import profile_next_action
from learning.users import UNSET, user_ensure, user_update

#: A user id in the path: at least 1 (less answers 422), or any id where an unknown one is a 404.
USER_ID = id_parameter("user_id")
ANY_USER_ID = id_parameter("user_id", minimum=None)
NEXT_ACTION_ERRORS = {400: ["user_not_found"]}


def user_response(user: TelegramUser, profile: BotProfile) -> dict[str, Any]:
    status = effective_status(user, timezone.now())
    return {
        "user_id": user.pk,
        "telegram_id": user.telegram_id,
        "username": user.username,
        "name": user.name,
        "user_language": profile.user_language,
        "telegram_data": user.telegram_data,
        "language_level": profile.language_level,
        "cohort": user.cohort,
        "plan": user.plan,
        "status": status,
        "status_expires_at": user.status_expires_at if status == user.status else None,
    }


def require_bot(bot_id: str) -> None:
    """A configured bot id in the path, else 422 `invalid_bot_id`."""
    if get_language(bot_id) is None:
        raise invalid_bot(bot_id, code="invalid_bot_id", status=422)


class UserEnsureApi(BotAPIView):
    body_schema = schemas.UserEnsureRequest

    @extend_schema(
        operation_id="users_ensure",
        request=schemas.UserEnsureRequest,
        responses={
            200: schemas.UserResponse,
            **error_responses({400: ["invalid_target_language"]}, body=True),
        },
    )
    def put(self, request: Request) -> Response:
        _, _, body = self.validated(request)
        user, profile = user_ensure(
            telegram_id=body.telegram_id,
            username=body.username,
            name=body.name,
            telegram_data=body.telegram_data,
            user_language=body.user_language,
            bot_id=body.target_language,
        )
        return Response(user_response(user, profile))


class UserByTelegramIdApi(BotAPIView):
    path_schema = schemas.TelegramIdPath
    query_schema = schemas.BotIdQuery

    @extend_schema(
        operation_id="users_by_telegram_id",
        parameters=[
            text_parameter("telegram_id", max_length=64),
            text_parameter(
                "bot_id",
                OpenApiParameter.QUERY,
                min_length=0,
                required=False,
                description="A configured bot id; absent or empty: the most recently used profile",
            ),
        ],
        responses={
            200: schemas.UserResponse,
            **error_responses(
                {400: ["invalid_bot_id"], 404: ["user_not_found", "profile_not_found"]}
            ),
        },
    )
    def get(self, request: Request, telegram_id: str) -> Response:
        path, query, _ = self.validated(request, telegram_id=telegram_id)
        bot_id = query.bot_id or None  # `?bot_id=` (empty) means no bot, as before
        if bot_id is not None and get_language(bot_id) is None:
            telegram_user_require(telegram_id=path.telegram_id)  # an unknown user is 404 first
            raise invalid_bot(bot_id, code="invalid_bot_id", status=400)
        profile = profile_for_telegram_id(telegram_id=path.telegram_id, bot_id=bot_id)
        return Response(user_response(profile.user, profile))


class UserUpdateApi(BotAPIView):
    path_schema = schemas.UserIdPath
    body_schema = schemas.UserUpdateRequest

    @extend_schema(
        operation_id="users_update",
        parameters=[ANY_USER_ID],
        request=schemas.UserUpdateRequest,
        responses={
            200: schemas.UserResponse,
            **error_responses(
                {400: ["invalid_target_language"], 404: ["user_not_found", "profile_not_found"]},
                body=True,
            ),
        },
    )
    def put(self, request: Request, user_id: str) -> Response:
        path, _, body = self.validated(request, user_id=user_id)
        user, profile = user_update(
            user_id=path.user_id,
            username=body.username,
            name=body.name,
            telegram_data=(
                body.telegram_data if "telegram_data" in body.model_fields_set else UNSET
            ),
            user_language=body.user_language,
            bot_id=body.target_language,
        )
        return Response(user_response(user, profile))


class ProfileBlockApi(BotAPIView):
    path_schema = schemas.UserBotPath
    body_schema = schemas.BlockRequest

    @extend_schema(
        operation_id="profiles_block",
        parameters=[USER_ID, BOT_ID],
        request=schemas.BlockRequest,
        responses={
            200: schemas.StatusOk,
            **error_responses(
                {400: ["profile_not_found"], 404: ["user_not_found"], 422: ["invalid_bot_id"]},
                body=True,
            ),
        },
    )
    def post(self, request: Request, user_id: str, bot_id: str) -> Response:
        path, _, body = self.validated(request, user_id=user_id, bot_id=bot_id)
        require_bot(path.bot_id)
        profile_block(
            user_id=path.user_id,
            bot_id=path.bot_id,
            telegram_id=body.telegram_id,
            reason=body.reason,
        )
        return Response({"status": "ok"})


class SessionRemindersApi(BotAPIView):
    path_schema = schemas.UserBotPath
    body_schema = schemas.SessionRemindersRequest

    @extend_schema(
        operation_id="profiles_session_reminders",
        parameters=[USER_ID, BOT_ID],
        request=schemas.SessionRemindersRequest,
        responses={
            200: schemas.SessionRemindersResponse,
            **error_responses(
                {404: ["user_not_found", "profile_not_found"], 422: ["invalid_bot_id"]},
                body=True,
            ),
        },
    )
    def put(self, request: Request, user_id: str, bot_id: str) -> Response:
        path, _, body = self.validated(request, user_id=user_id, bot_id=bot_id)
        require_bot(path.bot_id)
        profile = profile_set_session_reminders(
            user_id=path.user_id, bot_id=path.bot_id, wants_reminders=body.wants_reminders
        )
        return Response(
            {
                "user_id": path.user_id,
                "bot_id": path.bot_id,
                "wants_session_reminders": profile.wants_session_reminders is True,
                "status": "ok",
            }
        )


class PreferencesApi(BotAPIView):
    path_schema = schemas.UserBotPath
    body_schema = schemas.PreferencesRequest

    @extend_schema(
        operation_id="profiles_preferences",
        parameters=[USER_ID, BOT_ID],
        request=schemas.PreferencesRequest,
        responses={
            200: schemas.PreferencesResponse,
            **error_responses({404: ["profile_not_found"], 422: ["invalid_bot_id"]}, body=True),
        },
    )
    def put(self, request: Request, user_id: str, bot_id: str) -> Response:
        path, _, body = self.validated(request, user_id=user_id, bot_id=bot_id)
        require_bot(path.bot_id)
        changes = {key: getattr(body, key) for key in body.model_fields_set}
        profile = profile_update_preferences(
            user_id=path.user_id, bot_id=path.bot_id, changes=changes
        )
        stored = valid_overrides(
            profile.settings, user_id=path.user_id, bot_id=path.bot_id, source="profile settings"
        )
        return Response(
            {
                "user_id": path.user_id,
                "bot_id": path.bot_id,
                "settings": {k: (profile.settings or {})[k] for k in stored},
            }
        )


def next_action_response(*, user_id: int, bot_id: str) -> Response:
    result = profile_next_action(user_id=user_id, bot_id=bot_id, now=timezone.now())
    return Response(
        drop_none(
            {
                "exercise": result.exercise,
                "action": result.action,
                "message": result.message,
                "pause": format_iso_duration(result.pause) if result.pause is not None else None,
                "keyboard": result.keyboard,
            }
        )
    )


class NextActionApi(BotAPIView):
    path_schema = schemas.UserBotPath

    @extend_schema(
        operation_id="profiles_next_action",
        parameters=[USER_ID, BOT_ID],
        responses={
            200: schemas.NextActionSchema,
            **error_responses({**NEXT_ACTION_ERRORS, 422: ["invalid_bot_id"]}),
        },
    )
    def get(self, request: Request, user_id: str, bot_id: str) -> Response:
        path, _, _ = self.validated(request, user_id=user_id, bot_id=bot_id)
        require_bot(path.bot_id)
        return next_action_response(user_id=path.user_id, bot_id=path.bot_id)


class LegacyNextActionApi(BotAPIView):
    path_schema = schemas.PositiveUserIdPath

    @extend_schema(
        operation_id="users_next_action_legacy",
        parameters=[USER_ID],
        responses={200: schemas.NextActionSchema, **error_responses(NEXT_ACTION_ERRORS)},
        deprecated=True,
    )
    def get(self, request: Request, user_id: str) -> Response:
        path, _, _ = self.validated(request, user_id=user_id)
        legacy_endpoint_called("next_action", replacement="bots/{bot_id}/next-action/")
        return next_action_response(user_id=path.user_id, bot_id=settings.DEFAULT_TARGET_LANGUAGE)
