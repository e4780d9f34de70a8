"""Admin for the exercise bank (the moderation console with actions comes in a later issue)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from exercises.models import Exercise, ExerciseAnswer, ExerciseReview


class UntouchedFilter(admin.SimpleListFilter):
    title = "untouched"
    parameter_name = "untouched"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "No attempts yet"), ("no", "Attempted")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(attempts_count=0)
        if self.value() == "no":
            return queryset.filter(attempts_count__gt=0)
        return queryset


class VerdictInline(admin.TabularInline):
    model = ExerciseAnswer
    extra = 0
    fields = (
        "answer_text",
        "is_correct",
        "feedback_language",
        "is_reference",
        "created_by",
        "attempts_count",
    )
    readonly_fields = fields
    can_delete = False
    show_change_link = True


class ReviewInline(admin.TabularInline):
    model = ExerciseReview
    extra = 0
    fields = ("created_at", "source", "previous_status", "new_status", "note")
    readonly_fields = fields
    can_delete = False


@admin.register(Exercise)
class ExerciseAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "exercise_language",
        "exercise_type",
        "language_level",
        "topic",
        "status",
        "source",
        "attempts_count",
        "status_changed_at",
    )
    list_filter = (
        "status",
        "exercise_language",
        "exercise_type",
        "language_level",
        "topic",
        "source",
        "persona",
        UntouchedFilter,
    )
    search_fields = ("data", "content_hash", "comments")
    readonly_fields = (
        "exercise_type",
        "exercise_language",
        "data",
        "status",
        "status_changed_at",
        "last_reviewed_at",
        "content_hash",
        "random_key",
        "source",
        "attempts_count",
        "created_at",
        "updated_at",
    )
    inlines = (VerdictInline, ReviewInline)
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # content enters through generation or import_exercises


@admin.register(ExerciseAnswer)
class ExerciseAnswerAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "exercise",
        "answer_text",
        "is_correct",
        "feedback_language",
        "is_reference",
        "created_by",
        "attempts_count",
        "updated_at",
    )
    list_filter = ("is_correct", "is_reference", "feedback_language")
    search_fields = ("answer_text", "feedback", "created_by")
    list_select_related = ("exercise",)
    raw_id_fields = ("exercise",)
    readonly_fields = (
        "exercise",
        "answer",
        "answer_text",
        "answer_key",
        "is_reference",
        "created_by",
        "attempts_count",
        "created_at",
        "updated_at",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(ExerciseReview)
class ExerciseReviewAdmin(admin.ModelAdmin):
    list_display = ("id", "exercise", "source", "previous_status", "new_status", "created_at")
    list_filter = ("source", "new_status", "previous_status")
    search_fields = ("note",)
    list_select_related = ("exercise",)
    raw_id_fields = ("exercise",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
