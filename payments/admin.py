"""Admin for payments: financial records, read-only; refunds go through `payment_refund`.

The "Refund via Telegram" action (permission `payments.refund_payment`, group
*support*) first shows a confirmation page listing the selected payments; on confirmation it calls
the service once per payment (each one a Bot API call outside any transaction) and reports what
happened: refunded, already refunded, being refunded by another request right now (nothing done),
or the error Telegram gave (also kept in `refund_error`). The action never sleeps to retry: when
Telegram throttles (HTTP 429) it says in how many seconds to try again.
"""

from __future__ import annotations

import math
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.translation import gettext, gettext_lazy

from duoniche.admin import ReadOnlyAdmin
from duoniche.api.errors import ApplicationError
from duoniche.enums import PaymentStatus
from learning.admin import TelegramUserAdmin
from learning.admin_inlines import ReadOnlyInline
from payments.models import Payment
from payments.services import PaymentRefundFailed, payment_refund

REFUND_PERMISSION = "payments.refund_payment"


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "user",
        "bot_id",
        "source",
        "amount",
        "currency",
        "status",
        "payload_signed",
        "processed_at",
        "refunded_at",
        "refunded_by",
        "refund_error_short",
    )
    list_filter = (
        "source",
        "bot_id",
        "processed_at",
        "status",
        "refunded_at",
        "payload_signed",
    )
    search_fields = ("telegram_payment_charge_id", "user__telegram_id", "user__username")
    list_select_related = ("user", "refunded_by")
    date_hierarchy = "processed_at"
    actions = ("refund_via_telegram",)

    @admin.display(description="refund error")
    def refund_error_short(self, payment: Payment) -> str:
        error = payment.refund_error
        return error if len(error) <= 60 else error[:59] + "…"

    def has_refund_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(REFUND_PERMISSION)

    @admin.action(description="Refund via Telegram", permissions=["refund"])
    def refund_via_telegram(
        self, request: HttpRequest, queryset: QuerySet[Payment]
    ) -> TemplateResponse | None:
        payments = list(queryset.select_related("user").order_by("pk"))
        if request.POST.get("post") != "yes":
            return self._refund_confirmation(request, payments)
        staff = request.user if isinstance(request.user, AbstractBaseUser) else None
        refunded: list[int] = []
        already: list[int] = []
        in_progress: list[int] = []
        for payment in payments:
            try:
                result = payment_refund(payment_id=payment.pk, staff_user=staff, wait=False)
            except PaymentRefundFailed as error:
                self.message_user(request, _refund_failure(payment.pk, error), messages.ERROR)
                continue
            except ApplicationError as error:
                self.message_user(request, error.message, messages.ERROR)
                continue
            outcomes = {"refunded": refunded, "in_progress": in_progress}
            outcomes.get(result.outcome, already).append(result.payment_id)
        if refunded:
            self.message_user(
                request,
                f"Refunded {_payments(refunded)} via Telegram.",
                messages.SUCCESS,
            )
        if already:
            self.message_user(
                request,
                f"Already refunded, nothing done: {_payments(already)}.",
                messages.WARNING,
            )
        if in_progress:
            self.message_user(
                request,
                "Being refunded by another request right now, nothing done (check again in a "
                f"minute): {_payments(in_progress)}.",
                messages.WARNING,
            )
        return None

    def _refund_confirmation(
        self, request: HttpRequest, payments: list[Payment]
    ) -> TemplateResponse:
        to_refund = [p for p in payments if p.status == PaymentStatus.PAID]
        opts = self.model._meta
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "title": "Refund via Telegram?",
            "subtitle": None,
            "opts": opts,
            "payments": payments,
            "to_refund": to_refund,
            "already_refunded": [p for p in payments if p.status != PaymentStatus.PAID],
            "total_stars": sum(p.amount for p in to_refund),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "action_name": "refund_via_telegram",
            "media": self.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/payments/payment/refund_confirmation.html", context)


def _payments(ids: list[int]) -> str:
    label = "payment" if len(ids) == 1 else "payments"
    return f"{len(ids)} {label} (" + ", ".join(f"#{pk}" for pk in ids) + ")"


def _refund_failure(payment_id: int, error: PaymentRefundFailed) -> str:
    if error.retry_after is None:
        return error.message
    return gettext(
        "Payment %(payment)s was not refunded: Telegram asks to retry in %(seconds)s s."
    ) % {"payment": payment_id, "seconds": math.ceil(max(error.retry_after, 1))}


class PaymentInline(ReadOnlyInline):
    model = Payment
    fields = (
        "processed_at",
        "bot_id",
        "source",
        "amount",
        "currency",
        "status",
        "refunded_at",
        "refund_error",
    )
    ordering = ("-processed_at", "-id")
    show_change_link = True
    empty_text = gettext_lazy("No payments yet.")


# The learner's page lists their payments: this app adds its table to learning's user admin.
TelegramUserAdmin.inlines = (*TelegramUserAdmin.inlines, PaymentInline)
