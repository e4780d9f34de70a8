"""The database backend (duoniche/postgresql/base.py): its `django_db_*` metrics and timestamps.

Same series and labels as django-prometheus' backend, read back from the registry `/metrics`
exports: statements counted and timed, bulk statements counted per row, failures counted by
exception type, connections (and failed connections) counted. Timestamps come back exactly as
Django's own backend reads them.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import DatabaseError, DataError, connection, connections
from django.db.utils import ConnectionHandler
from prometheus_client import REGISTRY
from psycopg.pq import Format

from duoniche.postgresql.base import DatabaseWrapper, UtcTimestampLoader

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


TIMESTAMPS = (
    "SELECT '2026-12-05 22:00:00.123456+00'::timestamptz, NULL::timestamptz, "
    "'2026-01-01 10:00:00.5+03'::timestamptz, "
    "'0001-01-01 00:00+00'::timestamptz, '9999-12-31 23:59:59.999999+00'::timestamptz, "
    "'2026-03-29 01:30 Europe/Belgrade'::timestamptz, '2000-02-29 12:00:00.000001-09:30'"
    "::timestamptz"
)


def test_timestamps_read_as_djangos_own_loader_reads_them(settings):
    stock = ConnectionHandler(
        {"default": {**settings.DATABASES["default"], "ENGINE": "django.db.backends.postgresql"}}
    )["default"]
    try:
        with stock.cursor() as cursor:
            cursor.execute(TIMESTAMPS)
            expected = cursor.fetchone()
    finally:
        stock.close()
    with connection.cursor() as cursor:
        cursor.execute(TIMESTAMPS)
        read = cursor.fetchone()
        loader = connection.connection.adapters.get_loader(
            connection.connection.adapters.types["timestamptz"].oid, Format.TEXT
        )

    assert loader is UtcTimestampLoader
    assert read == expected
    assert [value.tzinfo for value in read if value is not None] == [UTC] * 6
    assert expected[2] == datetime(2026, 1, 1, 7, 0, 0, 500000, tzinfo=UTC)


def test_a_timestamp_python_cannot_hold_is_a_data_error():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 'infinity'::timestamptz")
        with pytest.raises(DataError):
            cursor.fetchone()
