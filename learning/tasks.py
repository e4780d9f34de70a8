"""Celery tasks of `learning`: thin interfaces onto the services (ids in, one service call)."""

from __future__ import annotations

from celery import shared_task
from celery.contrib.django.task import DjangoTask
from django.utils import timezone

from learning.report_services import (
    GENERATION_SOFT_TIME_LIMIT,
    GENERATION_TASK,
    GENERATION_TIME_LIMIT,
    report_generate_detailed,
)


@shared_task(
    base=DjangoTask,  # the app's default under Django; explicit so `delay_on_commit` is typed
    name=GENERATION_TASK,
    acks_late=True,
    soft_time_limit=GENERATION_SOFT_TIME_LIMIT,
    time_limit=GENERATION_TIME_LIMIT,
)
def generate_detailed_report(report_id: int) -> None:
    """Write the detailed report of `report_id` (once per request, however delivered)."""
    report_generate_detailed(report_id=report_id, now=timezone.now())
