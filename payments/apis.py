"""Payment endpoints of the bot API v1: Telegram Stars invoices and successful payments."""

from __future__ import annotations

from dataclasses import asdict

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from duoniche.api.schema import BOT_ID, error_responses, id_parameter, text_parameter
from duoniche.api.views import BotAPIView
from payments import schemas
from payments.invoices import payment_invoice_details
from payments.services import payment_process

SOURCE = text_parameter("source", max_length=50, description="session_unlock, report_donation")
ITEM_ID = id_parameter(
    "item_id",
    OpenApiParameter.QUERY,
    minimum=None,
    required=False,
    description="The report id; required for report_donation",
)

PROCESSED = "Payment processed successfully."
ALREADY_PROCESSED = "This payment was already processed; nothing was changed."


class InvoiceDetailsApi(BotAPIView):
    path_schema = schemas.InvoiceDetailsPath
    query_schema = schemas.InvoiceDetailsQuery

    @extend_schema(
        operation_id="payments_invoice_details",
        parameters=[SOURCE, id_parameter("user_id"), BOT_ID, ITEM_ID],
        responses={
            200: schemas.TelegramPayment,
            **error_responses(
                {
                    400: [
                        "profile_not_found",
                        "item_id_required",
                        "report_not_found",
                        "unsupported_payment_source",
                    ],
                    422: ["invalid_bot_id"],
                }
            ),
        },
    )
    def get(self, request: Request, source: str, user_id: str, bot_id: str) -> Response:
        path, query, _ = self.validated(request, source=source, user_id=user_id, bot_id=bot_id)
        details = payment_invoice_details(
            source=path.source,
            user_id=path.user_id,
            bot_id=path.bot_id,
            item_id=query.item_id,
            now=timezone.now(),
        )
        return Response(asdict(details))


class PaymentProcessApi(BotAPIView):
    body_schema = schemas.PaymentProcessRequest

    @extend_schema(
        operation_id="payments_process",
        request=schemas.PaymentProcessRequest,
        responses={
            200: schemas.PaymentProcessResponse,
            **error_responses(
                {
                    400: [
                        "invalid_payload",
                        "invalid_payload_signature",
                        "unsigned_payload",
                        "invalid_currency",
                        "invalid_amount",
                        "user_not_found",
                        "report_not_found",
                        "profile_not_found",
                    ]
                },
                body=True,
            ),
        },
    )
    def post(self, request: Request) -> Response:
        _, _, body = self.validated(request)
        outcome = payment_process(
            charge_id=body.telegram_payment_charge_id,
            amount=body.amount,
            currency=body.currency,
            payload=body.invoice_payload,
            raw=body.raw_payment_data,
        )
        message = ALREADY_PROCESSED if outcome.already_processed else PROCESSED
        return Response({"status": "success", "message": message})
