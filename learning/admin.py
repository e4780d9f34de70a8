"""Admin for learners: users, bot profiles, attempts and weekly reports."""

from __future__ import annotations

from django.contrib import admin

from duoniche.admin import ReadOnlyAdmin
from learning.models import BotProfile, ExerciseAttempt, TelegramUser, WeeklyReport


class BotProfileInline(admin.StackedInline):
    model = BotProfile
    extra = 0
    fields = ("bot_id", "user_language", "language_level", "status", "reason", "settings")
    readonly_fields = ("bot_id",)
    can_delete = False
    show_change_link = True


@admin.register(TelegramUser)
class TelegramUserAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "telegram_id",
        "username",
        "name",
        "status",
        "status_expires_at",
        "cohort",
        "created_at",
    )
    list_filter = ("status", "cohort", "plan")
    search_fields = ("telegram_id", "username", "name")
    readonly_fields = ("telegram_id", "telegram_data", "created_at", "updated_at")
    inlines = (BotProfileInline,)
    date_hierarchy = "created_at"


@admin.register(BotProfile)
class BotProfileAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "user",
        "bot_id",
        "user_language",
        "language_level",
        "status",
        "exercises_get_in_session",
        "current_streak_days",
        "last_exercise_at",
        "session_frozen_until",
    )
    list_filter = ("bot_id", "status", "language_level", "user_language")
    search_fields = ("user__telegram_id", "user__username", "user__name")
    list_select_related = ("user",)
    raw_id_fields = ("user",)
    readonly_fields = (
        "user",
        "bot_id",
        "exercises_get_in_session",
        "exercises_get_in_set",
        "errors_count_in_set",
        "last_exercise_at",
        "session_started_at",
        "session_frozen_until",
        "current_streak_days",
        "wants_session_reminders",
        "last_long_break_reminder_type_sent",
        "last_long_break_reminder_sent_at",
        "last_report_generated_at",
        "rating",
        "rating_last_calculated_at",
        "created_at",
        "updated_at",
    )


@admin.register(ExerciseAttempt)
class ExerciseAttemptAdmin(ReadOnlyAdmin):
    list_display = ("id", "user", "exercise", "answer_text", "is_correct", "created_at")
    list_filter = ("is_correct", "exercise__exercise_language", "exercise__exercise_type")
    search_fields = ("user__telegram_id", "answer_text")
    list_select_related = ("user", "exercise")
    date_hierarchy = "created_at"


@admin.register(WeeklyReport)
class WeeklyReportAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "user",
        "bot_id",
        "week_start_date",
        "status",
        "generation_attempts",
        "short_notified_at",
        "full_generated_at",
        "full_sent_at",
    )
    list_filter = ("status", "bot_id", "week_start_date")
    search_fields = ("user__telegram_id", "user__username")
    list_select_related = ("user",)
