"""Request validation glue: Pydantic v2 models in lax mode, errors in the wire's 422 shape.

The previous service validated with Pydantic, so its coercions (`"100"` → 100, `"yes"` → True) and
error vocabulary (`missing`, `int_parsing`, ...) are reproduced exactly by using the same library.
We never echo the input back (no `input` / `ctx` in the items).
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)
from pydantic_core import PydanticCustomError

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


#: Nesting deeper than this is refused before parsing (the parser and our walks stay shallow).
MAX_BODY_DEPTH = 32
#: A longer JSON number literal is refused before parsing (Python's int parsing is quadratic).
MAX_NUMBER_LENGTH = 50
#: Caps of a client's JSON object that we store (`telegram_data`, `raw_payment_data`).
MAX_STORED_JSON_BYTES = 16 * 1024
MAX_STORED_JSON_DEPTH = 10

# A JSON string, possessive so that it never backtracks; an unterminated one runs to the end.
_STRING = re.compile(r'"(?:[^"\\]++|\\.?)*+"?', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_BRACKET_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
_LONG_NUMBER = re.compile(rf"(?<![-+0-9.eE])[-+0-9.eE]{{{MAX_NUMBER_LENGTH + 1},}}")
_BAD_CHARACTER = re.compile("[\x00\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# How JSON text can spell NUL or a lone surrogate: `\u0000` or `\ud800`-`\udfff` escapes, or a
# raw surrogate (the decoding lets it through). Raw NUL is no JSON.
_BAD_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")

_DEPTH_ERROR: dict[str, Any] = {
    "msg": f"JSON should be nested at most {MAX_BODY_DEPTH} levels deep",
    "type": "json_too_deep",
}
_NUMBER_ERROR: dict[str, Any] = {
    "msg": f"JSON numbers should have at most {MAX_NUMBER_LENGTH} characters",
    "type": "json_number_too_long",
}
_NUL_ERROR: dict[str, Any] = {
    "msg": "String should not contain NUL characters",
    "type": "string_nul_character",
}
_SURROGATE_ERROR: dict[str, Any] = {
    "msg": "Input should be a valid string, unable to parse raw data as a unicode string",
    "type": "string_unicode",
}


def _structure_errors(text: str) -> list[dict[str, Any]]:
    """Too-deep nesting or a too-long number literal, found without recursion or a Python loop.

    Two searches skip the rest for ordinary bodies: few brackets cannot nest deeply, and without
    a long run of number characters no number literal is long. Otherwise the strings (which may
    hold anything) are cut out and the brackets and numbers left are measured, all in C.
    """
    if text.count("[") + text.count("{") <= MAX_BODY_DEPTH and not _LONG_NUMBER.search(text):
        return []
    outside_strings = _STRING.sub("", text)
    brackets = _NOT_BRACKET.sub("", outside_strings)
    if max(accumulate(map(_BRACKET_STEP.__getitem__, brackets)), default=0) > MAX_BODY_DEPTH:
        return [_DEPTH_ERROR | {"loc": ["body"]}]
    if _LONG_NUMBER.search(outside_strings):
        return [_NUMBER_ERROR | {"loc": ["body"]}]
    return []


def parse_json_body(raw: bytes) -> tuple[Any, list[dict[str, Any]]]:
    """The request body as JSON (whatever the Content-Type), or its 422 errors.

    Bytes are decoded as `json.loads` would (UTF-8/16/32, surrogates passed through so that the
    character check reports them), then checked for depth and number size before parsing.
    """
    if not raw.strip():
        return None, [{"loc": ["body"], "msg": "Field required", "type": "missing"}]
    position = 0
    try:
        text = raw.decode(json.detect_encoding(raw), "surrogatepass")
    except UnicodeDecodeError:
        pass
    else:
        structure = _structure_errors(text)
        if structure:
            return None, structure
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            position = exc.pos
        except (ValueError, RecursionError):
            # Out of the checks' reach (they bound depth and numbers); refused all the same.
            position = 0
        else:
            # Only these spellings put NUL or a lone surrogate into the parsed value; an
            # ordinary body has none, so the walk is skipped. (NaN and Infinity are refused by
            # the schemas: numeric fields want finite numbers, stored JSON is dumped strictly.)
            if ("\\u" in text and _BAD_ESCAPE.search(text)) or (
                not text.isascii() and _SURROGATE.search(text)
            ):
                return data, _character_errors(data, ["body"])
            return data, []
    return None, [{"loc": ["body", position], "msg": "JSON decode error", "type": "json_invalid"}]


def _character_errors(value: Any, loc: list[Any]) -> list[dict[str, Any]]:
    """NUL and lone surrogates anywhere in the input, keys included.

    PostgreSQL stores NUL in neither text nor jsonb, and a lone surrogate cannot be encoded to
    UTF-8. The walk is iterative (depth is bounded before, but a walk must not be the place
    where deep input fails) and reports in document order.
    """
    errors: list[dict[str, Any]] = []
    stack: list[tuple[Any, list[Any]]] = [(value, loc)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if _BAD_CHARACTER.search(item):
                error = _NUL_ERROR if "\x00" in item else _SURROGATE_ERROR
                errors.append(error | {"loc": where})
        elif isinstance(item, dict):
            children: list[tuple[Any, list[Any]]] = []
            for key, child in item.items():
                children += [(key, [*where, key]), (child, [*where, key])]
            stack += reversed(children)
        elif isinstance(item, list):
            stack += reversed([(child, [*where, index]) for index, child in enumerate(item)])
    # A key is part of a `loc`; a lone surrogate in it could not be written as UTF-8.
    for error in errors:
        error["loc"] = [
            _SURROGATE.sub("\ufffd", part) if isinstance(part, str) else part
            for part in error["loc"]
        ]
    return errors


def _stored_json(value: dict[str, Any]) -> dict[str, Any]:
    """A client's JSON object that we store and echo: bounded in depth and serialized size."""
    depth = 0
    level: list[Any] = [value]
    while level:
        depth += 1
        if depth > MAX_STORED_JSON_DEPTH:
            raise PydanticCustomError(
                "json_too_deep",
                "Value should be nested at most {max_depth} levels deep",
                {"max_depth": MAX_STORED_JSON_DEPTH},
            )
        level = [
            child
            for item in level
            for child in (item.values() if isinstance(item, dict) else item)
            if isinstance(child, dict | list)
        ]
    try:
        dumped = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:
        raise PydanticCustomError("finite_number", "Input should be a finite number") from None
    size = len(dumped.encode())
    if size > MAX_STORED_JSON_BYTES:
        raise PydanticCustomError(
            "json_too_large",
            "Value should be at most {max_bytes} bytes as JSON",
            {"max_bytes": MAX_STORED_JSON_BYTES},
        )
    return value


#: A JSON object from the client that is stored as it is (bounded; see `_stored_json`).
StoredJson = Annotated[dict[str, Any], AfterValidator(_stored_json)]


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
        nul = _character_errors(data, [location])
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
