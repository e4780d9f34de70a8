"""OpenAPI: the service-token auth, the error bodies, and the declared errors and parameters.

Every operation declares the error responses it can give (docs/api.md), each with the codes
that status can carry, over two shared components: `ErrorBody` (`detail` a sentence)
and `ValidationErrorBody` (`detail` the 422 list). `error_responses` adds the ones every operation
can give (401, 405, 422, 500, 503; 413 with a body), so the view decorators name only their own.
Path and query parameters are declared with the limits the server enforces.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

from duoniche.api.validation import MAX_ID


class ServiceTokenScheme(OpenApiAuthenticationExtension):
    target_class = "duoniche.api.auth.ServiceTokenAuthentication"
    name = ["bearerAuth", "apiKeyAuth"]

    def get_security_requirement(self, auto_schema: Any) -> list[dict[str, list[Any]]]:
        # Either header is enough: two alternative requirements, not both at once.
        return [{"bearerAuth": []}, {"apiKeyAuth": []}]

    def get_security_definition(self, auto_schema: Any) -> list[dict[str, Any]]:
        return [
            {"type": "http", "scheme": "bearer"},
            {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        ]


ERROR_BODY = "ErrorBody"
VALIDATION_ERROR_BODY = "ValidationErrorBody"
VALIDATION_ERROR_ITEM = "ValidationErrorItem"

#: The shared components, added to the document by `add_error_components`.
ERROR_COMPONENTS: dict[str, dict[str, Any]] = {
    ERROR_BODY: {
        "type": "object",
        "description": "Every error that is not a request-shape 422 (docs/api.md).",
        "properties": {
            "detail": {
                "type": "string",
                "description": "One English sentence; never branch on it.",
            },
            "code": {
                "type": "string",
                "description": "The machine-readable reason (docs/api.md); branch on it "
                "together with the HTTP status. Each response lists the codes it can carry.",
            },
        },
        "required": ["detail", "code"],
        "additionalProperties": False,
    },
    VALIDATION_ERROR_ITEM: {
        "type": "object",
        "properties": {
            "loc": {
                "type": "array",
                "description": '"path", "query" or "body", then the field path.',
                "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            },
            "msg": {"type": "string"},
            "type": {"type": "string", "description": "Pydantic v2 error type, e.g. missing."},
        },
        "required": ["loc", "msg", "type"],
        "additionalProperties": False,
    },
    VALIDATION_ERROR_BODY: {
        "type": "object",
        "description": "The request's path, query or body does not fit its schema.",
        "properties": {
            "detail": {
                "type": "array",
                "items": {"$ref": f"#/components/schemas/{VALIDATION_ERROR_ITEM}"},
            },
            "code": {"type": "string", "enum": ["validation_error"]},
        },
        "required": ["detail", "code"],
        "additionalProperties": False,
    },
}

#: What each status means, as the response's description.
_STATUS_MEANING = {
    400: "Bad request",
    401: "No service token, or one that is not recognised",
    404: "Not found",
    405: "Method not allowed on this path",
    413: "The request body is larger than the upload limit",
    422: "The request does not fit its schema (list detail), or a semantic error (string detail)",
    500: "Unexpected failure",
    503: "Temporarily unavailable (the database); retry later",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error_body(codes: Sequence[str]) -> dict[str, Any]:
    return {"allOf": [_ref(ERROR_BODY), {"properties": {"code": {"enum": list(codes)}}}]}


def _response(status: int, codes: Sequence[str]) -> OpenApiResponse:
    description = f"{_STATUS_MEANING[status]}: " + ", ".join(f"`{code}`" for code in codes)
    if status != 422:
        return OpenApiResponse(_error_body(codes), description=description)
    semantic = [code for code in codes if code != "validation_error"]
    schema = (
        {"oneOf": [_ref(VALIDATION_ERROR_BODY), _error_body(semantic)]}
        if semantic
        else _ref(VALIDATION_ERROR_BODY)
    )
    return OpenApiResponse(schema, description=description)


def error_responses(
    errors: Mapping[int, Sequence[str]] | None = None, *, body: bool = False
) -> dict[int, OpenApiResponse]:
    """The error responses of one operation: its own `{status: [codes]}` and the common ones.

    Every operation can answer 401, 405, 422 `validation_error`, 500 `internal_error` and 503
    `service_unavailable` (the database is unreachable); one that reads a body also 413.
    """
    codes: dict[int, list[str]] = {
        401: ["not_authenticated", "authentication_failed"],
        405: ["method_not_allowed"],
        422: ["validation_error"],
        500: ["internal_error"],
        503: ["service_unavailable"],
    }
    if body:
        codes[413] = ["request_too_large"]
    for status, own in (errors or {}).items():
        codes.setdefault(status, [])
        codes[status] += [code for code in own if code not in codes[status]]
    return {status: _response(status, codes[status]) for status in sorted(codes)}


Location = Literal["path", "query"]


def id_parameter(
    name: str,
    location: Location = OpenApiParameter.PATH,
    *,
    minimum: int | None = 1,
    required: bool = True,
    description: str = "",
) -> OpenApiParameter:
    """A database id (a bigint): at most 2**63 - 1, and `minimum` when the server requires it."""
    schema: dict[str, Any] = {"type": "integer", "maximum": MAX_ID}
    if minimum is not None:
        schema["minimum"] = minimum
    return OpenApiParameter(name, schema, location, required=required, description=description)


def text_parameter(
    name: str,
    location: Location = OpenApiParameter.PATH,
    *,
    min_length: int = 1,
    max_length: int | None = None,
    required: bool = True,
    description: str = "",
) -> OpenApiParameter:
    """A string; in a path one non-empty segment (no `/`)."""
    schema: dict[str, Any] = {"type": "string"}
    if min_length:
        schema["minLength"] = min_length
    if max_length is not None:
        schema["maxLength"] = max_length
    if location == OpenApiParameter.PATH:
        schema["pattern"] = "^[^/]+$"
    return OpenApiParameter(name, schema, location, required=required, description=description)


#: The bot id in a path: any segment; one that is not configured answers 422 `invalid_bot_id`.
BOT_ID = text_parameter("bot_id", description="A configured bot id: Bulgarian, Serbian")


def add_error_components(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: the shared error components the responses refer to."""
    result.setdefault("components", {}).setdefault("schemas", {}).update(ERROR_COMPONENTS)
    return result
