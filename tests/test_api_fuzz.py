"""Property-based fuzzing of every published operation: no 5xx, responses match the schema.

Schemathesis generates requests from our OpenAPI document (valid and invalid ones) and sends
them through the real WSGI application and database; bounded to 50 examples per operation.
"""

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from duoniche.wsgi import application

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
        checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
    )
