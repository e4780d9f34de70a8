"""Admin for the notification log (read-only: it records what was decided and sent)."""

from __future__ import annotations

from django.contrib import admin

from duoniche.admin import ReadOnlyAdmin
from notifications.models import NotificationLog


@admin.register(NotificationLog)
class NotificationLogAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "user",
        "bot_id",
        "notification_type",
        "is_full_report",
        "status",
        "attempts",
        "created_at",
        "enqueued_at",
        "next_attempt_at",
    )
    list_filter = ("notification_type", "status", "bot_id", "is_full_report")
    search_fields = ("dedupe_key", "task_id", "user__telegram_id")
    list_select_related = ("user",)
    date_hierarchy = "created_at"
