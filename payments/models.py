"""Telegram Stars payments: financial records, never deleted with their user."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from duoniche.enums import PaymentSource, PaymentStatus


class Payment(models.Model):
    user = models.ForeignKey(
        "learning.TelegramUser", on_delete=models.PROTECT, related_name="payments"
    )
    bot_id = models.CharField(max_length=50)
    telegram_payment_charge_id = models.CharField(max_length=255)
    currency = models.CharField(max_length=10)
    amount = models.PositiveIntegerField()
    source = models.CharField(max_length=32, choices=PaymentSource.choices)
    item_id = models.IntegerField(null=True, blank=True)
    report = models.ForeignKey(
        "learning.WeeklyReport",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="payments",
    )
    invoice_payload = models.CharField(max_length=256)
    payload_signed = models.BooleanField()
    status = models.CharField(
        max_length=16, choices=PaymentStatus.choices, default=PaymentStatus.PAID
    )
    refunded_at = models.DateTimeField(null=True, blank=True)
    refunded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="refunded_payments",
    )
    refund_error = models.TextField(blank=True, default="")
    #: When the refund in progress (status `refunding`) claimed the payment; a stale claim is
    #: abandoned (its process died) and may be taken over.
    refund_started_at = models.DateTimeField(null=True, blank=True)
    raw_payment_data = models.JSONField(null=True, blank=True)
    processed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["telegram_payment_charge_id"], name="uniq_payment_charge_id"
            )
        ]
        indexes = [
            models.Index(fields=["user", "processed_at"], name="payment_user_idx"),
            models.Index(fields=["bot_id"], name="payment_bot_idx"),
        ]
        permissions = [("refund_payment", "Can refund a payment via Telegram")]

    def __str__(self) -> str:
        return f"{self.amount} {self.currency} {self.source} ({self.status})"
