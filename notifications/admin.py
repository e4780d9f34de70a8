"""Admin for the notification log (read-only: it records what was decided and sent)."""

from __future__ import annotations

from django.contrib import admin
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy

from duoniche.admin import ReadOnlyAdmin
from learning.admin import TelegramUserAdmin
from learning.admin_inlines import LATEST, LatestFormSet, ReadOnlyInline
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


class NotificationInline(ReadOnlyInline):
    model = NotificationLog
    formset = LatestFormSet
    verbose_name_plural = format_lazy(gettext_lazy("latest {} notifications"), LATEST)
    empty_text = gettext_lazy("No notifications yet.")
    fields = (
        "created_at",
        "bot_id",
        "notification_type",
        "is_full_report",
        "status",
        "attempts",
        "error",
        "enqueued_at",
    )
    ordering = ("-created_at", "-id")
    show_change_link = True


# The learner's page lists their latest notifications: added to learning's user admin from here.
TelegramUserAdmin.inlines = (*TelegramUserAdmin.inlines, NotificationInline)
