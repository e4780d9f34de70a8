"""The stored verdicts (fixed or deleted through the verdict services) and the review history."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from exercises.admin.page import judgement
from exercises.admin.service_save import ServiceSaveMixin, moderator_of
from exercises.models import ExerciseAnswer, ExerciseReview
from exercises.staff_verdicts import (
    verdict_staff_delete,
    verdict_staff_edit,
    verdict_staff_edit_check,
)


class VerdictForm(forms.ModelForm):
    """The judgement and the feedback; the verdict service's rules are checked when cleaned."""

    class Meta:
        model = ExerciseAnswer
        fields = ("is_correct", "feedback")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.instance.pk is not None and "is_correct" in cleaned:
            try:
                verdict_staff_edit_check(verdict=self.instance, is_correct=cleaned["is_correct"])
            except ValidationError as error:
                self.add_error("is_correct", error)
        return cleaned


@admin.register(ExerciseAnswer)
class ExerciseAnswerAdmin(ServiceSaveMixin):
    form = VerdictForm
    list_display = (
        "id",
        "exercise",
        "answer_text",
        "judgement_display",
        "feedback_language",
        "reference_display",
        "created_by",
        "attempts_count",
        "updated_at",
    )
    list_filter = ("is_correct", "is_reference", "feedback_language")
    search_fields = ("answer_text", "feedback", "created_by")
    list_select_related = ("exercise",)
    fields = (
        "exercise",
        "answer_text",
        "is_correct",
        "feedback",
        "feedback_language",
        "error_tags",
        "is_reference",
        "created_by",
        "attempts_count",
        "created_at",
        "updated_at",
    )
    readonly_fields = (
        "exercise",
        "answer_text",
        "feedback_language",
        "error_tags",
        "is_reference",
        "created_by",
        "attempts_count",
        "created_at",
        "updated_at",
    )

    @admin.display(description=_("judged"), ordering="is_correct")
    def judgement_display(self, verdict: ExerciseAnswer) -> SafeString:
        """In words and colour: a wrong answer is not an error of the page."""
        shown = judgement(verdict.is_correct)
        return format_html(
            '<span class="verdict verdict-{}">{}</span>', shown["kind"], shown["label"]
        )

    @admin.display(description=_("reference"), ordering="is_reference")
    def reference_display(self, verdict: ExerciseAnswer) -> str:
        """The word "reference", or nothing: "no" is the normal case here, not a red cross."""
        return str(_("reference")) if verdict.is_reference else ""

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None and obj.is_reference:
            return (*self.readonly_fields, "is_correct")  # it is the correct answer
        return self.readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.is_reference:
            return False
        return super().has_delete_permission(request, obj)

    def save_model(
        self, request: HttpRequest, obj: ExerciseAnswer, form: Any, change: bool
    ) -> None:
        try:
            verdict_staff_edit(
                verdict_id=obj.pk,
                is_correct=obj.is_correct,
                feedback=obj.feedback,
                user=moderator_of(request),
                now=timezone.now(),
            )
        except ValidationError as error:
            self.report_failure(request, error)

    def delete_model(self, request: HttpRequest, obj: ExerciseAnswer) -> None:
        verdict_staff_delete(verdict_id=obj.pk, user=moderator_of(request), now=timezone.now())

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ExerciseAnswer]) -> None:
        user = moderator_of(request)
        now = timezone.now()
        for verdict_id in queryset.filter(is_reference=False).values_list("pk", flat=True):
            verdict_staff_delete(verdict_id=verdict_id, user=user, now=now)


@admin.register(ExerciseReview)
class ExerciseReviewAdmin(admin.ModelAdmin):
    """Read-only: every decision on an exercise, by the jobs or by staff."""

    list_display = (
        "id",
        "exercise",
        "source",
        "previous_status",
        "new_status",
        "note",
        "created_at",
    )
    list_filter = ("source", "new_status", "previous_status")
    search_fields = ("note",)
    list_select_related = ("exercise",)
    raw_id_fields = ("exercise",)
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
