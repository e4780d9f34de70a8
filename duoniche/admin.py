"""Admin for platform records, the read-only base the ledgers and logs of every app share, and
the operations dashboard on the admin index."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext, gettext_lazy, ngettext
from django_otp.plugins.otp_totp.models import TOTPDevice

from duoniche.dashboard import dashboard_build
from duoniche.job_runs import JobNotQueued, job_enqueue_forced
from duoniche.jobs import JOBS, UnknownJob
from duoniche.models import JobLock, JobRun, LLMCall
from duoniche.staff_auth import StaffLoginForm
from duoniche.two_factor import totp_reset

admin.site.site_header = gettext_lazy("DuoNiche admin")
admin.site.site_title = gettext_lazy("DuoNiche admin")
admin.site.login_form = StaffLoginForm


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records written only by the system (ledgers, logs, payments): staff look, never edit."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


#: What the ledger totals add up, per group and overall.
LEDGER_SUMS = {
    "calls": Count("pk"),
    "failures": Count("pk", filter=Q(ok=False)),
    "input_tokens": Sum("input_tokens", default=0),
    "output_tokens": Sum("output_tokens", default=0),
    "cost_usd": Sum("cost_usd", default=Decimal(0)),
}


def llm_call_totals(calls: QuerySet[LLMCall]) -> QuerySet[LLMCall, dict[str, Any]]:
    """`calls` grouped by day (current time zone), purpose and model: one query, newest first."""
    return (
        calls.order_by()
        .annotate(day=TruncDate("created_at"))
        .values("day", "purpose", "model")
        .annotate(**LEDGER_SUMS)
        .order_by("-day", "purpose", "model")
    )


@admin.register(LLMCall)
class LLMCallAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "purpose",
        "operation",
        "model",
        "ok",
        "latency_ms",
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "subject",
    )
    list_filter = ("purpose", "ok", "model", "created_at")
    search_fields = ("operation", "subject", "model", "error_type")
    date_hierarchy = "created_at"
    change_list_template = "admin/duoniche/llmcall/change_list.html"

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.totals_view)
        return [path("totals/", view, name="duoniche_llmcall_totals"), *super().get_urls()]

    def totals_view(self, request: HttpRequest) -> HttpResponse:
        """Calls, failures, tokens and cost per day, purpose and model, for the list's filters."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            calls = self.get_changelist_instance(request).get_queryset(request)
        except IncorrectLookupParameters:  # as the list itself does with a bad filter
            return redirect(f"{reverse('admin:duoniche_llmcall_changelist')}?e=1")
        rows = list(llm_call_totals(calls))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": gettext("LLM totals per day, purpose and model"),
            "rows": rows,
            "total": calls.aggregate(**LEDGER_SUMS),
            "filters": request.GET.urlencode(),
        }
        return TemplateResponse(request, "admin/duoniche/llmcall/totals.html", context)


@admin.register(JobRun)
class JobRunAdmin(ReadOnlyAdmin):
    list_display = (
        "job",
        "period_key",
        "status",
        "forced_display",
        "attempts",
        "started_at",
        "finished_at",
    )
    list_filter = ("job", "status", "forced")
    search_fields = ("job", "period_key")
    date_hierarchy = "started_at"
    change_list_template = "admin/duoniche/jobrun/change_list.html"

    @admin.display(description=gettext_lazy("forced"), ordering="forced")
    def forced_display(self, run: JobRun) -> str:
        return gettext("yes") if run.forced else "–"

    def may_run_now(self, request: HttpRequest) -> bool:
        return bool(request.user.is_superuser or request.user.has_perm("duoniche.add_jobrun"))

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        context = {
            **(extra_context or {}),
            "registered_jobs": sorted(JOBS) if self.may_run_now(request) else [],
        }
        return super().changelist_view(request, context)

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.run_now_view)
        return [
            path("run-now/<str:name>/", view, name="duoniche_jobrun_run_now"),
            *super().get_urls(),
        ]

    def run_now_view(self, request: HttpRequest, name: str) -> HttpResponse:
        """Queue a forced run for a worker (POST); the run shows in the list when it starts."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.may_run_now(request):
            raise PermissionDenied
        runs = reverse("admin:duoniche_jobrun_changelist")
        try:
            task_id = job_enqueue_forced(name=name)
        except UnknownJob:
            messages.error(request, gettext("There is no job called %(name)s.") % {"name": name})
            return redirect(runs)
        except JobNotQueued as exc:
            messages.error(
                request,
                gettext("%(name)s was not queued: %(reason)s.") % {"name": name, "reason": exc},
            )
            return redirect(runs)
        messages.success(
            request,
            gettext(
                "%(name)s is queued as a forced run (task %(task)s). Its run is listed here once "
                "a worker starts it."
            )
            % {"name": name, "task": task_id},
        )
        return redirect(f"{runs}?{urlencode({'job__exact': name, 'forced__exact': '1'})}")


@admin.register(JobLock)
class JobLockAdmin(ReadOnlyAdmin):
    list_display = ("name", "owner", "acquired_at", "locked_until")
    search_fields = ("name", "owner")


# --- the dashboard on the admin index ---------------------------------------------------------

_site_index = admin.site.index


def index_with_dashboard(
    request: HttpRequest, extra_context: dict[str, Any] | None = None
) -> TemplateResponse:
    """The admin index with the operations dashboard (`templates/admin/index.html`) above it.

    The project keeps Django's default admin site, so its index view is wrapped here, before the
    URLconf asks the site for its views. Each section is computed only for staff who may open
    the changelists it links to.
    """
    dashboard = dashboard_build(now=timezone.now(), can_view=request.user.has_perm)
    return _site_index(request, extra_context={"dashboard": dashboard, **(extra_context or {})})


admin.site.index = index_with_dashboard  # type: ignore[method-assign]


# django-otp's own admin edits keys and shows their QR codes; staff set up their own device on the
# "Two-factor sign-in" page instead, and a superuser can only reset one (a lost phone).
if admin.site.is_registered(TOTPDevice):
    admin.site.unregister(TOTPDevice)


@admin.register(TOTPDevice)
class TwoFactorDeviceAdmin(ReadOnlyAdmin):
    list_display = ("user", "name", "confirmed", "created_at", "last_used_at")
    list_filter = ("confirmed",)
    search_fields = ("user__username", "user__email")
    fields = ("user", "name", "confirmed", "created_at", "last_used_at")
    actions = ["reset"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.action(description=gettext_lazy("Reset two-factor sign-in"), permissions=["delete"])
    def reset(self, request: HttpRequest, queryset: QuerySet[TOTPDevice]) -> None:
        count = totp_reset(list(queryset.values_list("pk", flat=True)))
        self.message_user(
            request,
            ngettext(
                "Reset for %(count)d staff member: they set it up again at their next sign-in.",
                "Reset for %(count)d staff members: they set it up again at their next sign-in.",
                count,
            )
            % {"count": count},
            messages.SUCCESS,
        )

    def delete_model(self, request: HttpRequest, obj: TOTPDevice) -> None:
        totp_reset([obj.pk])

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[TOTPDevice]) -> None:
        totp_reset(list(queryset.values_list("pk", flat=True)))
