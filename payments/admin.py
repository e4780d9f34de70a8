"""Admin for payments: financial records, read-only (refunds come with the payments issue)."""

from __future__ import annotations

from django.contrib import admin

from duoniche.admin import ReadOnlyAdmin
from payments.models import Payment


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
    )
    list_filter = ("status", "source", "bot_id", "payload_signed")
    search_fields = ("telegram_payment_charge_id", "user__telegram_id", "user__username")
    list_select_related = ("user",)
    date_hierarchy = "processed_at"
