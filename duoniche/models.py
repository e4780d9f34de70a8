"""Platform records: the LLM call ledger and the periodic-job lock and run log."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from duoniche.enums import JobRunStatus, LLMPurpose


class LLMCall(models.Model):
    """One request to an LLM provider (the ledger behind cost, budget and debugging)."""

    created_at = models.DateTimeField(default=timezone.now)
    purpose = models.CharField(max_length=16, choices=LLMPurpose.choices)
    operation = models.CharField(max_length=64)
    prompt_version = models.CharField(max_length=32, blank=True, default="")
    model = models.CharField(max_length=100)
    provider_host = models.CharField(max_length=255, blank=True, default="")
    input_tokens = models.PositiveIntegerField(null=True, blank=True)
    output_tokens = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField()
    ok = models.BooleanField()
    error_type = models.CharField(max_length=100, blank=True, default="")
    error_message = models.CharField(max_length=500, blank=True, default="")
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    subject = models.CharField(max_length=64, blank=True, default="")
    attempt_no = models.PositiveSmallIntegerField(default=1)

    class Meta:
        verbose_name = "LLM call"
        indexes = [
            models.Index(fields=["created_at"], name="llmcall_created_idx"),
            models.Index(fields=["purpose", "created_at"], name="llmcall_purpose_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.operation} via {self.model} ({'ok' if self.ok else 'failed'})"


class JobLock(models.Model):
    """Mutual exclusion for a periodic job; an expired lock may be taken over."""

    name = models.CharField(max_length=50, unique=True)
    owner = models.CharField(max_length=100)
    acquired_at = models.DateTimeField()
    locked_until = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} held by {self.owner}"


class JobRun(models.Model):
    """One run of a periodic job for one period; unforced runs are unique per period."""

    job = models.CharField(max_length=50)
    period_key = models.CharField(max_length=40)
    forced = models.BooleanField(default=False)
    status = models.CharField(
        max_length=16, choices=JobRunStatus.choices, default=JobRunStatus.RUNNING
    )
    attempts = models.PositiveSmallIntegerField(default=1)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    stats = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["job", "period_key"],
                condition=models.Q(forced=False),
                name="uniq_jobrun_period",
            )
        ]
        indexes = [models.Index(fields=["job", "started_at"], name="jobrun_job_started_idx")]

    def __str__(self) -> str:
        return f"{self.job} {self.period_key} ({self.status})"
