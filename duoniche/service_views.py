"""Endpoints for operators rather than bots (liveness/readiness, Prometheus metrics), and the
error pages of everything that is not the admin: JSON, like the API's errors."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django_prometheus.exports import ExportToDjangoView
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess

from duoniche import dictionaries, metrics_collector
from duoniche.api.errors import error_body
from duoniche.metrics import api_errors

logger = logging.getLogger(__name__)


def _for_staff(request: HttpRequest) -> bool:
    """Pages people read in a browser (the admin) keep Django's HTML errors; the rest is JSON."""
    return request.path.startswith("/admin/") or request.path == "/admin"


def _json_error(detail: str, code: str, status: int) -> JsonResponse:
    api_errors.labels(code=code).inc()
    return JsonResponse(error_body(detail, code), status=status)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler400: an unknown Host header, a body over the upload limit read by a middleware,
    and other refused requests."""
    if _for_staff(request):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        return _json_error(
            f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.",
            "request_too_large",
            413,
        )
    return _json_error("The request was refused (check the Host header).", "bad_request", 400)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler404."""
    if _for_staff(request):
        return defaults.page_not_found(request, exception)
    return _json_error("Not found.", "not_found", 404)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: what fails outside the API views' own error handling."""
    if _for_staff(request):
        return defaults.server_error(request)
    return _json_error("Internal server error.", "internal_error", 500)


def _get_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """GET (and HEAD, for probes); any other method is a JSON 405 `method_not_allowed`."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            response = _json_error(
                f"Method {request.method} is not allowed here.", "method_not_allowed", 405
            )
            response["Allow"] = "GET, HEAD"
            return response
        return view(request, *args, **kwargs)

    return wrapper


def _features() -> dict[str, str]:
    llm = bool(settings.OPENAI_API_KEY or settings.OPENAI_BASE_URL)
    tts = bool(settings.GENERATE_AUDIO and settings.GOOGLE_APPLICATION_CREDENTIALS)
    return {
        "llm": "enabled" if llm else "disabled",
        "tts": "enabled" if tts else "disabled",
        "broker": "eager" if settings.CELERY_TASK_ALWAYS_EAGER else "redis",
        "language_check": dictionaries.feature(),
    }


# Exempt from CSRF: these read-only machine endpoints take no form, and the CSRF check would
# answer a wrong method with an HTML 403 before `_get_only` can answer its JSON 405.
@csrf_exempt
@never_cache
@_get_only
def healthz(request: HttpRequest) -> JsonResponse:
    """200 after a database round trip; 503 with the reason when the database does not answer.

    One statement: a connection that cannot be opened gives up after DATABASE_CONNECT_TIMEOUT,
    and a statement limit, when wanted, is DATABASE_STATEMENT_TIMEOUT, set at connect."""
    try:
        with connection.cursor() as cursor:
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


@csrf_exempt
@_get_only
def api_index(request: HttpRequest) -> JsonResponse:
    """`/api/v1/`: where a newcomer's browser lands first; links only, so no token is asked."""
    links = {"health": "/healthz", "metrics": "/metrics", "admin": "/admin/"}
    if settings.API_DOCS_ENABLED:
        links = {"docs": "/api/docs/", "schema": "/api/schema/", **links}
    return JsonResponse(
        {
            "service": "DuoNiche bot API",
            "version": "v1",
            "authentication": "Authorization: Bearer <token> or X-API-Key: <token>",
            "links": links,
        }
    )


@csrf_exempt
@never_cache
@_get_only
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
