"""The database backend's `django_db_*` metrics (duoniche/postgresql/base.py).

Same series and labels as django-prometheus' backend, read back from the registry `/metrics`
exports: statements counted and timed, bulk statements counted per row, failures counted by
exception type, connections (and failed connections) counted.
"""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, connections
from django.db.utils import ConnectionHandler
from prometheus_client import REGISTRY

from duoniche.postgresql.base import DatabaseWrapper

pytestmark = pytest.mark.django_db

LABELS = {"alias": "default", "vendor": "postgresql"}


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, {**LABELS, **labels}) or 0.0


def test_the_configured_backend_is_this_one():
    assert isinstance(connections["default"], DatabaseWrapper)


def test_every_statement_is_counted_and_timed():
    connection.ensure_connection()  # a new connection's set-up statements are not this test's
    executed = sample("django_db_execute_total")
    timed = sample("django_db_query_duration_seconds_count")
    total = sample("django_db_query_duration_seconds_sum")
    quick = sample("django_db_query_duration_seconds_bucket", le="0.025")
    with connection.cursor() as cursor:
        for _ in range(3):
            cursor.execute("SELECT pg_sleep(0.03)")

    assert sample("django_db_execute_total") == executed + 3
    assert sample("django_db_query_duration_seconds_count") == timed + 3
    # Each statement slept 30 ms: none lands in the 25 ms bucket, and their time is in the sum.
    assert sample("django_db_query_duration_seconds_bucket", le="0.025") == quick
    assert sample("django_db_query_duration_seconds_sum") - total >= 0.09


def test_a_bulk_statement_counts_each_row():
    connection.ensure_connection()
    executed = sample("django_db_execute_total")
    many = sample("django_db_execute_many_total")
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE metered (n int)")
        cursor.executemany("INSERT INTO metered VALUES (%s)", ([n] for n in range(4)))
        cursor.execute("SELECT count(*) FROM metered")
        assert cursor.fetchone() == (4,)

    assert sample("django_db_execute_many_total") == many + 4
    assert sample("django_db_execute_total") == executed + 1 + 4 + 1


def test_a_failed_statement_is_counted_by_its_error_type():
    connection.ensure_connection()
    errors = sample("django_db_errors_total", type="DivisionByZero")
    timed = sample("django_db_query_duration_seconds_count")
    with pytest.raises(DatabaseError), connection.cursor() as cursor:
        cursor.execute("SELECT 1 / 0")

    assert sample("django_db_errors_total", type="DivisionByZero") == errors + 1
    assert sample("django_db_query_duration_seconds_count") == timed + 1


def test_connections_and_failed_connections_are_counted(settings):
    opened = sample("django_db_new_connections_total")
    failed = sample("django_db_new_connection_errors_total")
    config = {**settings.DATABASES["default"], "NAME": "duoniche_no_such_database"}
    missing = ConnectionHandler({"default": config})["default"]
    with pytest.raises(DatabaseError):
        missing.ensure_connection()
    missing.close()
    fresh = ConnectionHandler({"default": dict(settings.DATABASES["default"])})["default"]
    try:
        fresh.ensure_connection()
        with fresh.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        fresh.close()

    assert sample("django_db_new_connection_errors_total") == failed + 1
    assert sample("django_db_new_connections_total") == opened + 2
    assert connections["default"].vendor == "postgresql"
