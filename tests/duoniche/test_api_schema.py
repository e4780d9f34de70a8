"""The OpenAPI document declares every documented error and the limits of path and query values.

The expectations are each operation's own errors (docs/api.md) and the two shared error
components, checked against the generated document; error bodies are validated against
the declared response schemas with a JSON Schema validator.
"""

from __future__ import annotations

from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator
from jsonschema import Draft202012Validator

BIG = 2**63 - 1

#: docs/api.md: (method, canonical path) -> the operation's own errors {status: codes}.
SUMMARY: dict[tuple[str, str], dict[int, list[str]]] = {
    ("put", "/api/v1/users/"): {400: ["invalid_target_language"]},
    ("get", "/api/v1/users/by-telegram-id/{telegram_id}"): {
        404: ["user_not_found", "profile_not_found"],
        400: ["invalid_bot_id"],
    },
    ("put", "/api/v1/users/{user_id}"): {
        404: ["user_not_found", "profile_not_found"],
        400: ["invalid_target_language"],
    },
    ("post", "/api/v1/users/{user_id}/bots/{bot_id}/block"): {
        422: ["invalid_bot_id"],
        404: ["user_not_found"],
        400: ["profile_not_found"],
    },
    ("put", "/api/v1/users/{user_id}/bots/{bot_id}/preferences/session_reminders"): {
        422: ["invalid_bot_id"],
        404: ["user_not_found", "profile_not_found"],
    },
    ("put", "/api/v1/users/{user_id}/bots/{bot_id}/preferences"): {
        422: ["invalid_bot_id"],
        404: ["profile_not_found"],
    },
    ("get", "/api/v1/users/{user_id}/bots/{bot_id}/next-action/"): {
        422: ["invalid_bot_id"],
        400: ["user_not_found"],
    },
    ("get", "/api/v1/users/{user_id}/next_action/"): {400: ["user_not_found"]},
    ("post", "/api/v1/exercises/{exercise_id}/validate/"): {
        404: ["exercise_not_found", "profile_not_found"],
        422: ["answer_type_mismatch", "answer_shape_invalid", "answer_not_in_options"],
        500: ["exercise_language_unconfigured"],
    },
    ("post", "/api/v1/exercises/validate/"): {
        404: ["exercise_not_found", "profile_not_found"],
        422: ["answer_type_mismatch", "answer_shape_invalid", "answer_not_in_options"],
        500: ["exercise_language_unconfigured"],
    },
    ("get", "/api/v1/users/{user_id}/bots/{bot_id}/reports/latest-detailed"): {
        422: ["invalid_bot_id"],
        404: ["profile_not_found", "report_not_found"],
        503: ["service_unavailable"],
    },
    ("get", "/api/v1/payments/invoice-details/{source}/users/{user_id}/bots/{bot_id}"): {
        422: ["invalid_bot_id"],
        400: [
            "profile_not_found",
            "item_id_required",
            "report_not_found",
            "unsupported_payment_source",
        ],
    },
    ("post", "/api/v1/payments/process"): {
        400: [
            "invalid_payload",
            "invalid_payload_signature",
            "unsigned_payload",
            "invalid_currency",
            "invalid_amount",
            "user_not_found",
            "report_not_found",
            "profile_not_found",
        ]
    },
    ("get", "/api/v1/notifications/{task_id}/relevance"): {},
}

#: What every operation can answer besides its own (auth, method, shape, crash, database outage).
COMMON: dict[int, list[str]] = {
    401: ["not_authenticated", "authentication_failed"],
    405: ["method_not_allowed"],
    500: ["internal_error"],
    503: ["service_unavailable"],
}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)


def _operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path): operation
        for path, item in document["paths"].items()
        if path.startswith("/api/v1/")
        for method, operation in item.items()
    }


def _validator(document: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    # The components ride along in the root, so `#/components/schemas/...` resolves there.
    return Draft202012Validator({"components": document["components"], "allOf": [schema]})


def _body_schema(operation: dict[str, Any], status: int) -> dict[str, Any]:
    return operation["responses"][str(status)]["content"]["application/json"]["schema"]


def _accepts(document: dict[str, Any], operation: dict[str, Any], status: int, body: Any) -> bool:
    return _validator(document, _body_schema(operation, status)).is_valid(body)


def test_every_operation_of_the_summary_is_published_and_no_other(document):
    assert set(_operations(document)) == set(SUMMARY)


@pytest.mark.parametrize("key", sorted(SUMMARY), ids=lambda key: f"{key[0]} {key[1]}")
def test_each_operation_declares_its_errors_with_their_codes(document, key):
    operation = _operations(document)[key]
    expected = {status: list(codes) for status, codes in COMMON.items()}
    for status, codes in SUMMARY[key].items():
        expected.setdefault(status, [])
        expected[status] += codes
    if "requestBody" in operation:
        expected[413] = ["request_too_large"]

    declared = {int(status) for status in operation["responses"]}
    assert declared == {200, 422, *expected}
    for status, codes in expected.items():
        for code in codes:
            assert _accepts(document, operation, status, {"detail": "Why.", "code": code}), (
                status,
                code,
            )
        assert not _accepts(document, operation, status, {"detail": "Why.", "code": "other"})
        assert not _accepts(document, operation, status, {"detail": "Why."})


@pytest.mark.parametrize("key", sorted(SUMMARY), ids=lambda key: f"{key[0]} {key[1]}")
def test_each_422_is_the_validation_list_or_one_of_the_operations_semantic_codes(document, key):
    operation = _operations(document)[key]
    listed = {
        "detail": [
            {
                "loc": ["path", "user_id"],
                "msg": "Input should be a valid integer",
                "type": "int_type",
            },
            {"loc": ["body", "answer", "words", 0], "msg": "Field required", "type": "missing"},
        ],
        "code": "validation_error",
    }
    semantic = SUMMARY[key].get(422, [])

    assert _accepts(document, operation, 422, listed)
    assert _accepts(document, operation, 422, {"detail": [], "code": "validation_error"})
    # The list shape only with its code; items carry exactly loc, msg and type (no input echo).
    assert not _accepts(document, operation, 422, {**listed, "code": "invalid_bot_id"})
    assert not _accepts(document, operation, 422, {"detail": "Why.", "code": "validation_error"})
    echoed = {**listed["detail"][0], "input": "secret"}
    assert not _accepts(document, operation, 422, {**listed, "detail": [echoed]})
    for code in semantic:
        assert _accepts(document, operation, 422, {"detail": "Why.", "code": code})
    if not semantic:
        assert not _accepts(document, operation, 422, {"detail": "Why.", "code": "invalid_bot_id"})


def test_the_error_bodies_are_shared_components(document):
    schemas = document["components"]["schemas"]

    assert schemas["ErrorBody"]["required"] == ["detail", "code"]
    assert schemas["ErrorBody"]["properties"]["code"]["description"]
    assert schemas["ValidationErrorBody"]["properties"]["code"]["enum"] == ["validation_error"]
    assert schemas["ValidationErrorItem"]["required"] == ["loc", "msg", "type"]
    operation = _operations(document)[("put", "/api/v1/users/")]
    assert _body_schema(operation, 400)["allOf"][0] == {"$ref": "#/components/schemas/ErrorBody"}
    assert _body_schema(operation, 422) == {"$ref": "#/components/schemas/ValidationErrorBody"}


def _parameters(document: dict[str, Any], method: str, path: str) -> dict[str, dict[str, Any]]:
    operation = _operations(document)[(method, path)]
    return {parameter["name"]: parameter for parameter in operation.get("parameters", [])}


POSITIVE_USER_ID = [
    ("get", "/api/v1/users/{user_id}/bots/{bot_id}/next-action/"),
    ("get", "/api/v1/users/{user_id}/next_action/"),
    ("post", "/api/v1/users/{user_id}/bots/{bot_id}/block"),
    ("put", "/api/v1/users/{user_id}/bots/{bot_id}/preferences/session_reminders"),
    ("put", "/api/v1/users/{user_id}/bots/{bot_id}/preferences"),
    ("get", "/api/v1/users/{user_id}/bots/{bot_id}/reports/latest-detailed"),
    ("get", "/api/v1/payments/invoice-details/{source}/users/{user_id}/bots/{bot_id}"),
]


@pytest.mark.parametrize("key", POSITIVE_USER_ID, ids=lambda key: key[1])
def test_user_ids_in_these_paths_are_at_least_1(document, key):
    schema = _parameters(document, *key)["user_id"]["schema"]

    assert schema == {"type": "integer", "minimum": 1, "maximum": BIG}


@pytest.mark.parametrize(
    ("key", "name"),
    [
        (("put", "/api/v1/users/{user_id}"), "user_id"),
        # An unknown learner, 0 and negative ids too, is simply not relevant (200).
        (("get", "/api/v1/notifications/{task_id}/relevance"), "user_id"),
        (
            ("get", "/api/v1/payments/invoice-details/{source}/users/{user_id}/bots/{bot_id}"),
            "item_id",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else value[1],
)
def test_other_ids_have_no_lower_bound(document, key, name):
    schema = _parameters(document, *key)[name]["schema"]

    assert schema == {"type": "integer", "maximum": BIG}


def test_exercise_id_is_at_least_1(document):
    parameters = _parameters(document, "post", "/api/v1/exercises/{exercise_id}/validate/")

    assert parameters["exercise_id"]["schema"] == {"type": "integer", "minimum": 1, "maximum": BIG}


@pytest.mark.parametrize(
    ("key", "name", "max_length"),
    [
        (("get", "/api/v1/users/by-telegram-id/{telegram_id}"), "telegram_id", 64),
        (("get", "/api/v1/notifications/{task_id}/relevance"), "task_id", 64),
        (
            ("get", "/api/v1/payments/invoice-details/{source}/users/{user_id}/bots/{bot_id}"),
            "source",
            50,
        ),
        (("post", "/api/v1/users/{user_id}/bots/{bot_id}/block"), "bot_id", None),
    ],
    ids=lambda value: value if isinstance(value, str) else str(value),
)
def test_text_path_values_are_one_non_empty_segment(document, key, name, max_length):
    schema = _parameters(document, *key)[name]["schema"]

    assert schema["minLength"] == 1
    assert schema.get("maxLength") == max_length
    assert schema["pattern"] == "^[^/]+$"


def test_an_empty_bot_id_query_is_allowed_where_it_means_absent(document):
    by_telegram_id = _parameters(document, "get", "/api/v1/users/by-telegram-id/{telegram_id}")
    relevance = _parameters(document, "get", "/api/v1/notifications/{task_id}/relevance")

    assert by_telegram_id["bot_id"].get("required", False) is False
    assert by_telegram_id["bot_id"]["schema"] == {"type": "string"}  # "" fits
    assert relevance["bot_id"]["required"] is True
