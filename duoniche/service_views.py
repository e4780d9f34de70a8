"""Endpoints for operators rather than bots: liveness/readiness and Prometheus metrics."""

from __future__ import annotations

import hmac
import logging

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django_prometheus.exports import ExportToDjangoView
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess

from duoniche import metrics_collector

logger = logging.getLogger(__name__)


def _features() -> dict[str, str]:
    llm = bool(settings.OPENAI_API_KEY or settings.OPENAI_BASE_URL)
    tts = bool(settings.GENERATE_AUDIO and settings.GOOGLE_APPLICATION_CREDENTIALS)
    return {
        "llm": "enabled" if llm else "disabled",
        "tts": "enabled" if tts else "disabled",
        "broker": "eager" if settings.CELERY_TASK_ALWAYS_EAGER else "redis",
    }


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 after a database round trip; 503 with the reason when the database does not answer."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SET LOCAL statement_timeout = 2000")
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        logger.warning("healthz: database check failed: %s", exc.__class__.__name__)
        return JsonResponse(
            {
                "status": "error",
                "checks": {"database": "error"},
                "code": "service_unavailable",
                "detail": f"The database is not reachable ({exc.__class__.__name__}).",
            },
            status=503,
        )
    return JsonResponse({"status": "ok", "checks": {"database": "ok"}, "features": _features()})


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus exposition; behind `Authorization: Bearer <METRICS_TOKEN>` when it is set."""
    token = settings.METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            response = JsonResponse(
                {"detail": "A valid metrics token is required.", "code": "not_authenticated"},
                status=401,
            )
            response["WWW-Authenticate"] = "Bearer"
            return response
    if settings.PROMETHEUS_MULTIPROC_DIR:
        # Every web and Celery process writes its samples there; aggregate them per scrape, with
        # the business gauges computed from the database and the cache.
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        metrics_collector.registry_add(registry)
        return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
    return ExportToDjangoView(request)
