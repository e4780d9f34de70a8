"""Request validation glue: Pydantic v2 models in lax mode, errors in the wire's 422 shape.

The previous service validated with Pydantic, so its coercions (`"100"` → 100, `"yes"` → True) and
error vocabulary (`missing`, `int_parsing`, ...) are reproduced exactly by using the same library.
We never echo the input back (no `input` / `ctx` in the items).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from duoniche.api.errors import RequestValidationError

Model = TypeVar("Model", bound=BaseModel)


class Schema(BaseModel):
    """Base of request schemas: unknown keys ignored, lax coercions as in the previous service."""

    model_config = ConfigDict(extra="ignore")


def _telegram_id(value: Any) -> Any:
    # Telegram ids are numbers; accept a JSON integer as its decimal string (harmless superset).
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


#: Database ids are bigints: a larger number can match nothing and must not reach the database.
MAX_ID = 2**63 - 1
Id = Annotated[int, Field(le=MAX_ID)]
PositiveId = Annotated[int, Field(ge=1, le=MAX_ID)]

TelegramId = Annotated[
    str, BeforeValidator(_telegram_id), StringConstraints(min_length=1, max_length=64)
]


def _items(error: ValidationError, location: str) -> list[dict[str, Any]]:
    return [
        {"loc": [location, *item["loc"]], "msg": item["msg"], "type": item["type"]}
        for item in error.errors(include_url=False, include_input=False, include_context=False)
    ]


def parse_json_body(raw: bytes) -> tuple[Any, list[dict[str, Any]]]:
    """The request body as JSON (whatever the Content-Type), or the `json_invalid` error."""
    if not raw.strip():
        return None, [{"loc": ["body"], "msg": "Field required", "type": "missing"}]
    try:
        return json.loads(raw), []
    except UnicodeDecodeError:
        position = 0
    except json.JSONDecodeError as exc:
        position = exc.pos
    return None, [{"loc": ["body", position], "msg": "JSON decode error", "type": "json_invalid"}]


def _nul_errors(value: Any, loc: list[Any]) -> list[dict[str, Any]]:
    """NUL characters anywhere in the input: PostgreSQL can store them in neither text nor jsonb."""
    if isinstance(value, str):
        return [_NUL_ERROR | {"loc": loc}] if "\x00" in value else []
    if isinstance(value, dict):
        return [
            error
            for key, item in value.items()
            for error in _nul_errors(key, [*loc, key]) + _nul_errors(item, [*loc, key])
        ]
    if isinstance(value, list):
        return [
            error for index, item in enumerate(value) for error in _nul_errors(item, [*loc, index])
        ]
    return []


_NUL_ERROR = {"msg": "String should not contain NUL characters", "type": "string_nul_character"}


def validate_request(
    *,
    path: tuple[type[BaseModel], dict[str, Any]] | None = None,
    query: tuple[type[BaseModel], dict[str, Any]] | None = None,
    body: tuple[type[BaseModel], bytes] | None = None,
) -> tuple[Any, Any, Any]:
    """Validate path, query and body together; raise one 422 listing all errors in that order."""
    errors: list[dict[str, Any]] = []
    results: list[Any] = [None, None, None]
    for position, (location, part) in enumerate((("path", path), ("query", query))):
        if part is None:
            continue
        schema, data = part
        nul = _nul_errors(data, [location])
        if nul:
            errors += nul
            continue
        try:
            results[position] = schema.model_validate(data)
        except ValidationError as exc:
            errors += _items(exc, location)
    if body is not None:
        schema, raw = body
        data, body_errors = parse_json_body(raw)
        if not body_errors:
            body_errors = _nul_errors(data, ["body"])
        errors += body_errors
        if not body_errors:
            if not isinstance(data, dict):
                errors.append(
                    {
                        "loc": ["body"],
                        "msg": "Input should be a valid dictionary or object to extract "
                        "fields from",
                        "type": "model_attributes_type",
                    }
                )
            else:
                try:
                    results[2] = schema.model_validate(data)
                except ValidationError as exc:
                    errors += _items(exc, "body")
    if errors:
        raise RequestValidationError(errors)
    return results[0], results[1], results[2]
