"""Notifier endpoints of the bot API v1: is a queued notification still relevant?"""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from duoniche.api.views import BotAPIView
from notifications import schemas
from notifications.relevance import notification_is_relevant


class NotificationRelevanceApi(BotAPIView):
    path_schema = schemas.TaskIdPath
    query_schema = schemas.RelevanceQuery

    @extend_schema(
        operation_id="notifications_relevance",
        parameters=[
            OpenApiParameter("task_id", str, OpenApiParameter.PATH),
            OpenApiParameter("bot_id", str, OpenApiParameter.QUERY, required=True),
            OpenApiParameter("user_id", int, OpenApiParameter.QUERY, required=True),
        ],
        responses={200: schemas.RelevanceResponse},
    )
    def get(self, request: Request, task_id: str) -> Response:
        path, query, _ = self.validated(request, task_id=task_id)
        relevant = notification_is_relevant(
            task_id=path.task_id, user_id=query.user_id, bot_id=query.bot_id, now=timezone.now()
        )
        return Response({"is_relevant": relevant})
