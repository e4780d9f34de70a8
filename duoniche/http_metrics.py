"""The `http_*` metrics of the previous service (docs/api.md), recorded by one middleware.

Every label comes from a closed set, so a caller cannot mint series: `handler` is the canonical
route template of the resolved URL name (`/api/v1/users/{user_id}` for both slash forms), one
template per operator endpoint, `/admin/` for the whole admin and `none` for anything unmatched
(including the JSON 404 catch-all under `/api/v1/`); `method` is a standard HTTP method or
`other`; `status` is the group (`2xx`, `4xx`, ...). The per-request cost is two dict lookups
(the resolver's result, then the cached series) and five metric updates. The metrics are
module-level, so in multiprocess mode (`PROMETHEUS_MULTIPROC_DIR`) every process writes its own
files and `/metrics` aggregates them. django-prometheus' request middleware, which counted the
same requests again as `django_http_*`, is not installed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponseBase
from django.urls import ResolverMatch

from duoniche import metrics
from duoniche.api.routing import CANONICAL_PATH_BY_NAME

NONE = "none"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: Canonical paths of the routes that are not `api_route`s, by URL name.
OPERATOR_PATHS = {
    "healthz": "/healthz",
    "metrics": "/metrics",
    "schema": "/api/schema/",
    "docs": "/api/docs/",
}
ADMIN_PATH = "/admin/"


def route_handler(match: ResolverMatch | None) -> str:
    """The `handler` label of a resolved request (`none` when nothing named matched)."""
    if match is None:
        return NONE
    if "admin" in match.namespaces:
        return ADMIN_PATH
    name = match.url_name or ""
    return CANONICAL_PATH_BY_NAME.get(name) or OPERATOR_PATHS.get(name) or NONE


def _content_length(request: HttpRequest) -> int:
    try:
        return max(int(request.META.get("CONTENT_LENGTH") or 0), 0)
    except ValueError:
        return 0


#: The metric children of each (handler, method, status) seen: every label is from a closed set,
#: so this stays small, and a request costs one dict lookup instead of five `labels()` calls.
_SERIES: dict[tuple[str, str, str], tuple[Any, Any, Any, Any]] = {}


def _series(handler: str, method: str, status: str) -> tuple[Any, Any, Any, Any]:
    key = (handler, method, status)
    series = _SERIES.get(key)
    if series is None:
        series = _SERIES[key] = (
            metrics.http_requests.labels(handler=handler, method=method, status=status),
            metrics.http_request_size.labels(handler=handler),
            metrics.http_response_size.labels(handler=handler),
            metrics.http_request_duration.labels(handler=handler, method=method),
        )
    return series


class HttpMetricsMiddleware:
    """Record `http_requests_total`, the size summaries and the duration histograms."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        started = time.perf_counter()
        response = self.get_response(request)
        duration = time.perf_counter() - started
        handler = route_handler(getattr(request, "resolver_match", None))
        method = request.method if request.method in METHODS else "other"
        requests, request_size, response_size, request_duration = _series(
            handler, method, f"{response.status_code // 100}xx"
        )
        requests.inc()
        request_size.observe(_content_length(request))
        size = 0 if response.streaming else len(response.content)  # type: ignore[attr-defined]
        response_size.observe(size)
        request_duration.observe(duration)
        metrics.http_request_duration_highr.observe(duration)
        return response
