"""The base of every bot API view: service-token auth, the error format and request parsing."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel
from rest_framework.request import Request
from rest_framework.views import APIView

from duoniche import metrics
from duoniche.api.auth import HasServiceToken, ServiceTokenAuthentication
from duoniche.api.validation import validate_request

logger = logging.getLogger("duoniche.api")

#: The deprecated endpoints already named in this process's log.
_DEPRECATIONS_LOGGED: set[str] = set()


def drop_none(value: Any) -> Any:
    """Remove null-valued keys recursively (the exclude-none responses)."""
    if isinstance(value, dict):
        return {key: drop_none(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [drop_none(item) for item in value]
    return value


def legacy_endpoint_called(endpoint: str, *, replacement: str) -> None:
    """Count a call of a deprecated endpoint; name it in the log on its first call per process.

    A bot still on the old path would otherwise add a warning to every request's access line;
    `backend_legacy_endpoint_calls_total{endpoint}` counts every call.
    """
    metrics.legacy_endpoint_calls.labels(endpoint=endpoint).inc()
    if endpoint not in _DEPRECATIONS_LOGGED:
        _DEPRECATIONS_LOGGED.add(endpoint)
        logger.warning(
            "deprecated endpoint %s called; use %s (logged once per process; "
            "backend_legacy_endpoint_calls_total counts the calls)",
            endpoint,
            replacement,
        )


class BotAPIView(APIView):
    authentication_classes = [ServiceTokenAuthentication]
    permission_classes = [HasServiceToken]
    #: Only the methods each endpoint defines: no implicit HEAD (from GET) or OPTIONS (DRF's
    #: metadata), which the contract answers with 405 `method_not_allowed`.
    http_method_names = ["get", "post", "put", "patch", "delete"]
    #: Pydantic models for the parts of the request this view takes.
    path_schema: type[BaseModel] | None = None
    query_schema: type[BaseModel] | None = None
    body_schema: type[BaseModel] | None = None

    def validated(self, request: Request, **path_kwargs: Any) -> tuple[Any, Any, Any]:
        """(path, query, body) models; one 422 with every error when any part is invalid."""
        return validate_request(
            path=(self.path_schema, path_kwargs) if self.path_schema else None,
            query=(self.query_schema, request.query_params.dict()) if self.query_schema else None,
            body=(self.body_schema, request.body) if self.body_schema else None,
        )
