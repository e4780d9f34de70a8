"""Report endpoints of the bot API v1: the detailed version of the latest weekly report."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from duoniche.api.schema import BOT_ID, error_responses
from duoniche.api.views import BotAPIView
from learning import report_schemas
from learning.apis import USER_ID, require_bot
from learning.report_services import report_request_detailed


class LatestDetailedReportApi(BotAPIView):
    path_schema = report_schemas.UserBotPath

    @extend_schema(
        operation_id="reports_latest_detailed",
        parameters=[USER_ID, BOT_ID],
        responses={
            200: report_schemas.ReportStatusResponse,
            # A broker that is down is no error: the report waits for report_generation_sweep.
            **error_responses(
                {404: ["profile_not_found", "report_not_found"], 422: ["invalid_bot_id"]}
            ),
        },
    )
    def get(self, request: Request, user_id: str, bot_id: str) -> Response:
        path, _, _ = self.validated(request, user_id=user_id, bot_id=bot_id)
        require_bot(path.bot_id)
        status = report_request_detailed(
            user_id=path.user_id, bot_id=path.bot_id, now=timezone.now()
        )
        return Response({"current_report_status": status})
