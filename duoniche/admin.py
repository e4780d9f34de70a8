"""Admin for platform records, the read-only base the ledgers and logs of every app share, and
the operations dashboard on the admin index."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone

from duoniche.dashboard import dashboard_build
from duoniche.models import JobLock, JobRun, LLMCall


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records written only by the system (ledgers, logs, payments): staff look, never edit."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


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


@admin.register(JobRun)
class JobRunAdmin(ReadOnlyAdmin):
    list_display = (
        "job",
        "period_key",
        "status",
        "forced",
        "attempts",
        "started_at",
        "finished_at",
    )
    list_filter = ("job", "status", "forced")
    search_fields = ("job", "period_key")
    date_hierarchy = "started_at"


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
