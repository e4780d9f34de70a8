"""Notifier endpoints of the bot API v1: is a queued notification still relevant?"""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from duoniche.api.schema import error_responses, id_parameter, text_parameter
from duoniche.api.views import BotAPIView
from notifications import schemas
from notifications.relevance import notification_is_relevant


class NotificationRelevanceApi(BotAPIView):
    path_schema = schemas.TaskIdPath
    query_schema = schemas.RelevanceQuery

    @extend_schema(
        operation_id="notifications_relevance",
        parameters=[
            text_parameter("task_id", max_length=64),
            text_parameter("bot_id", OpenApiParameter.QUERY, min_length=0),
            # Any integer: an unknown learner (0 or negative too) is simply not relevant.
            id_parameter("user_id", OpenApiParameter.QUERY, minimum=None),
        ],
        responses={200: schemas.RelevanceResponse, **error_responses()},
    )
    def get(self, request: Request, task_id: str) -> Response:
        path, query, _ = self.validated(request, task_id=task_id)
        relevant = notification_is_relevant(
            task_id=path.task_id, user_id=query.user_id, bot_id=query.bot_id, now=timezone.now()
        )
        return Response({"is_relevant": relevant})
