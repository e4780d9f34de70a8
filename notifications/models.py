"""Every notification we decide to send: delivery log, de-duplication and relevance facts."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from duoniche.enums import NotificationStatus, NotificationType


class NotificationLog(models.Model):
    task_id = models.UUIDField(default=uuid.uuid4, unique=True)
    dedupe_key = models.CharField(max_length=200, unique=True)
    user = models.ForeignKey(
        "learning.TelegramUser", on_delete=models.CASCADE, related_name="notifications"
    )
    bot_id = models.CharField(max_length=50)
    notification_type = models.CharField(max_length=32, choices=NotificationType.choices)
    is_full_report = models.BooleanField(default=False)
    text = models.TextField()
    reply_markup = models.JSONField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    context = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=16, choices=NotificationStatus.choices, default=NotificationStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    #: When the last attempt to publish began (the message's `created_at`); stuck detection.
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    #: A `failed` row is re-sent from this moment on (exponential back-off, docs/notifier.md).
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "notification"
        indexes = [
            models.Index(
                fields=["user", "bot_id", "notification_type", "created_at"],
                name="notification_user_type_idx",
            ),
            models.Index(
                fields=["next_attempt_at"],
                name="notification_retry_due_idx",
                condition=models.Q(status="failed"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.notification_type} to {self.user_id} in {self.bot_id} ({self.status})"
