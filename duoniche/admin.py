"""Admin for platform records, and the read-only base the ledgers and logs of every app share."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

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
