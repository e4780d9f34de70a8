"""Admin for what learners did and got: attempts and weekly reports (read-only records).

A weekly report offers "Regenerate detailed report" (a list action and a button on its page): it
asks `report_staff_regenerate` to queue a new generation through the report outbox; the text is
written by the worker, never inside the admin's request. Imported by `learning.admin`.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.defaultfilters import linebreaksbr
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy

from duoniche.admin import ReadOnlyAdmin
from duoniche.enums import ReportStatus
from learning.admin_forms import plain_text, readable_lines
from learning.models import ExerciseAttempt, WeeklyReport
from learning.report_services import Regeneration, report_staff_regenerate


@admin.register(ExerciseAttempt)
class ExerciseAttemptAdmin(ReadOnlyAdmin):
    list_display = ("id", "user", "exercise", "answer_text", "is_correct", "created_at")
    list_filter = ("is_correct", "exercise__exercise_language", "exercise__exercise_type")
    search_fields = ("user__telegram_id", "answer_text")
    list_select_related = ("user", "exercise")
    date_hierarchy = "created_at"
    exclude = ("answer", "feedback", "error_tags")
    readonly_fields = ("answer_fields", "feedback_text", "mistakes")

    @admin.display(description=gettext_lazy("answer as sent"))
    def answer_fields(self, attempt: ExerciseAttempt) -> Any:
        return readable_lines(attempt.answer)

    @admin.display(description=gettext_lazy("feedback"))
    def feedback_text(self, attempt: ExerciseAttempt) -> str:
        return plain_text(attempt.feedback)

    @admin.display(description=gettext_lazy("mistakes"))
    def mistakes(self, attempt: ExerciseAttempt) -> Any:
        return readable_lines(attempt.error_tags)


def regeneration_message(result: Regeneration) -> tuple[str, int]:
    """What staff read after asking for a new detailed report, and the message level."""
    report = result.report_id
    if result.outcome == "queued":
        return (
            gettext(
                "Report #%(report)s: a new detailed report is being written; "
                "its status is now %(status)s."
            )
            % {"report": report, "status": ReportStatus(result.status).label},
            messages.SUCCESS,
        )
    if result.outcome == "waiting":
        return (
            gettext(
                "Report #%(report)s: the task queue is unreachable; the generation sweep will "
                "queue the new detailed report when it is back."
            )
            % {"report": report},
            messages.WARNING,
        )
    if result.outcome == "not_requested":
        return (
            gettext(
                "Report #%(report)s: the learner has not asked for the detailed report yet, "
                "so there is nothing to regenerate."
            )
            % {"report": report},
            messages.WARNING,
        )
    if result.outcome == "sent":
        return (
            gettext(
                "Report #%(report)s: the detailed report was already sent to the learner, "
                "so it was not regenerated."
            )
            % {"report": report},
            messages.WARNING,
        )
    return (
        gettext(
            "Report #%(report)s: a detailed report is being written right now; "
            "try again when it is done."
        )
        % {"report": report},
        messages.WARNING,
    )


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
    exclude = ("short_report", "full_report")
    readonly_fields = ("short_text", "full_text")
    actions = ("regenerate_detailed_report",)
    change_form_template = "admin/learning/weeklyreport/change_form.html"

    @admin.display(description=gettext_lazy("short report"))
    def short_text(self, report: WeeklyReport) -> str:
        return linebreaksbr(plain_text(report.short_report))

    @admin.display(description=gettext_lazy("detailed report"))
    def full_text(self, report: WeeklyReport) -> str:
        return linebreaksbr(plain_text(report.full_report))

    def has_regenerate_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.change_{self.opts.model_name}")

    @admin.action(
        description=gettext_lazy("Regenerate detailed report"), permissions=["regenerate"]
    )
    def regenerate_detailed_report(
        self, request: HttpRequest, queryset: QuerySet[WeeklyReport]
    ) -> None:
        now = timezone.now()
        for report_id in queryset.order_by("pk").values_list("pk", flat=True):
            text, level = regeneration_message(
                report_staff_regenerate(report_id=report_id, now=now)
            )
            self.message_user(request, text, level)

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<path:object_id>/regenerate/",
                self.admin_site.admin_view(self.regenerate_view),
                name=f"{self.opts.app_label}_{self.opts.model_name}_regenerate",
            ),
            *super().get_urls(),
        ]

    def regenerate_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        report = get_object_or_404(WeeklyReport, pk=object_id)
        if not self.has_regenerate_permission(request, report):
            return HttpResponse(status=403)
        result = report_staff_regenerate(report_id=report.pk, now=timezone.now())
        text, level = regeneration_message(result)
        self.message_user(request, text, level)
        if result.outcome in ("queued", "waiting"):
            self.log_change(request, report, gettext("Regenerate detailed report"))
        return HttpResponseRedirect(
            reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[report.pk])
        )

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> HttpResponse:
        context["can_regenerate"] = obj is not None and self.has_regenerate_permission(request)
        return super().render_change_form(request, context, add, change, form_url, obj)
