"""One error hierarchy and one handler: every API error is `{"detail", "code"}` on the wire.

Request-shape errors are 422 with `detail` a list of `{loc, msg, type}` (the previous service's
FastAPI shape). A database outage (`OperationalError`: unreachable, connect or statement timeout)
answers 503 `service_unavailable`. Unknown exceptions are logged (and reach Sentry) and answer a
JSON 500.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import OperationalError
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response

from duoniche import metrics

logger = logging.getLogger("duoniche.api")


class ApplicationError(Exception):
    """A domain error the client can act on; `code` is the stable machine-readable part."""

    def __init__(self, message: str, *, code: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


class RequestValidationError(Exception):
    """The request's path, query or body does not fit its schema (422, list detail)."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(errors)} validation error(s)")
        self.errors = errors


def error_body(detail: Any, code: str) -> dict[str, Any]:
    return {"detail": detail, "code": code}


def _respond(detail: Any, code: str, status: int, **headers: str) -> Response:
    metrics.api_errors.labels(code=code).inc()
    response = Response(error_body(detail, code), status=status, headers=headers or None)
    if status >= 500:
        # Logged here with its cause; Django's own "Internal Server Error: <path>" line would
        # say the same again without it. (A 4xx is in the access log only: LOGGING.)
        response._has_been_logged = True  # type: ignore[attr-defined]
    return response


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    if isinstance(exc, ApplicationError):
        if exc.status >= 500:
            logger.error("API: %s: %s", exc.code, exc.message)
        return _respond(exc.message, exc.code, exc.status)
    if isinstance(exc, RequestValidationError):
        return _respond(exc.errors, "validation_error", 422)
    if isinstance(exc, drf_exceptions.NotAuthenticated):
        return _respond(
            "A service token is required (Authorization: Bearer or X-API-Key).",
            "not_authenticated",
            401,
            **{"WWW-Authenticate": "Bearer"},
        )
    if isinstance(exc, drf_exceptions.AuthenticationFailed):
        return _respond(
            "The service token is not recognised.",
            "authentication_failed",
            401,
            **{"WWW-Authenticate": "Bearer"},
        )
    if isinstance(exc, drf_exceptions.MethodNotAllowed):
        request = context.get("request")
        method = request.method if request is not None else "this method"
        return _respond(f"Method {method} is not allowed here.", "method_not_allowed", 405)
    if isinstance(exc, RequestDataTooBig):
        return _respond(
            f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.",
            "request_too_large",
            413,
        )
    if isinstance(exc, Http404 | drf_exceptions.NotFound):
        return _respond("Not found.", "not_found", 404)
    if isinstance(exc, OperationalError):
        # The database is unreachable or did not answer in time (connect or statement timeout):
        # an outage the bot may retry, not a bug. Nothing was committed by this request.
        logger.warning("API: database unavailable: %s: %s", type(exc).__name__, exc)
        return _respond(
            "The database is not reachable right now. Try again later.",
            "service_unavailable",
            503,
        )
    logger.exception("unhandled API error", exc_info=exc)
    return _respond("Internal server error.", "internal_error", 500)


@csrf_exempt
def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Any unknown path under /api/v1/, whatever the method."""
    metrics.api_errors.labels(code="not_found").inc()
    return JsonResponse(error_body("Not found.", "not_found"), status=404)
