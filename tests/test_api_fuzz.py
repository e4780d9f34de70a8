"""Property-based fuzzing of every published operation: no 5xx, responses match the schema.

Schemathesis generates requests from our OpenAPI document (valid and invalid ones) and sends
them through the real WSGI application and database; bounded to 50 examples per operation.
Every answer's status must be declared for its operation and its body must fit the declared
schema, errors included (`ErrorBody` with the operation's codes, the 422 list).
A second run turns generated bodies into hostile ones (deep nesting, huge numbers and bodies,
lone surrogates, NUL, oversized stored JSON) on every operation that takes a body.
"""

import json
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from duoniche.wsgi import application
from exercises.models import ExerciseAnswer
from learning.models import BotProfile, ExerciseAttempt, TelegramUser
from payments.models import Payment

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    # Like Django's test client: the request hooks must not close the connection that holds
    # the test's transaction.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api_never_fails_and_keeps_its_contract(case):
    case.call_and_validate(
        headers={"Authorization": "Bearer test-token"},
        checks=[
            not_a_server_error,
            status_code_conformance,
            response_schema_conformance,
            content_type_conformance,
        ],
    )


# --- Hostile bodies on every body operation ------------------------------------------------
# Each schema-generated body is turned into one of the cheap attacks of the hostile-input
# suite (tests/test_hostile_input.py); the answer must be a declared JSON 4xx whatever else
# was drawn.

BODY_OPERATIONS = [
    operation
    for operation in (result.ok() for result in schema.get_all_operations())
    if len(list(operation.body)) > 0
]


def _spliced(body: dict[str, Any], raw_value: str) -> bytes:
    return json.dumps({**body, "hostile": "@@"}).replace('"@@"', raw_value).encode()


def _poisoned(body: dict[str, Any], bad: str, *, fields: bool) -> bytes:
    """`bad` in the stored JSON objects and a key, and with `fields` in every string field."""
    stored = {f"k{bad}": [f"v{bad}", {"deeper": bad}]}
    if fields:
        body = {
            key: f"{value}{bad}" if isinstance(value, str) else value for key, value in body.items()
        }
    return json.dumps(
        {**body, f"key{bad}": bad, "telegram_data": stored, "raw_payment_data": stored}
    ).encode()


#: attack -> (body maker, always refused with a 4xx whatever the rest of the body is)
HOSTILE_BODIES: dict[str, tuple[Callable[[dict[str, Any]], bytes], bool]] = {
    "deep_nesting": (lambda body: _spliced(body, "[" * 5000 + "]" * 5000), True),
    "5000_digit_integer": (lambda body: _spliced(body, "7" * 5000), True),
    "3_mb_body": (lambda body: _spliced(body, json.dumps("x" * 3_000_000)), True),
    "lone_surrogates": (lambda body: _poisoned(body, "\ud800", fields=False), True),
    "lone_surrogates_in_fields": (lambda body: _poisoned(body, "\udfff", fields=True), True),
    "nul": (lambda body: _poisoned(body, "\x00", fields=True), True),
    "100_kb_stored_json": (
        lambda body: json.dumps(
            {
                **body,
                "telegram_data": {"b": "x" * 100_000},
                "raw_payment_data": {"b": "x" * 100_000},
            }
        ).encode(),
        False,
    ),
    "non_finite_numbers": (
        lambda body: _spliced({**body, "telegram_data": {"n": 1e400}}, "NaN"),
        False,
    ),
}


def _rows() -> tuple[int, ...]:
    return tuple(
        model.objects.count()
        for model in (TelegramUser, BotProfile, ExerciseAttempt, ExerciseAnswer, Payment)
    )


@pytest.mark.django_db
@pytest.mark.parametrize("attack", sorted(HOSTILE_BODIES))
@pytest.mark.parametrize("operation", BODY_OPERATIONS, ids=lambda operation: operation.label)
@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_hostile_bodies_never_fail(operation, attack, data):
    case = data.draw(operation.as_strategy())
    make, always_refused = HOSTILE_BODIES[attack]
    body = case.body if isinstance(case.body, dict) else {}
    before = _rows()

    response = case.call(
        headers={"Authorization": "Bearer test-token", "Content-Type": "application/json"},
        data=make(body),
    )

    case.validate_response(
        response,
        checks=[not_a_server_error, status_code_conformance, response_schema_conformance],
    )
    assert response.headers["content-type"] == ["application/json"]
    assert set(response.json()) >= {"detail"}
    if always_refused:
        assert 400 <= response.status_code < 500
        assert _rows() == before
