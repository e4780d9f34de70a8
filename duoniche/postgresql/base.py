"""Django's PostgreSQL backend, counting and timing every statement for `/metrics`.

It records the same series as django-prometheus' backend, under the same names and labels:
`django_db_new_connections_total`, `django_db_new_connection_errors_total`,
`django_db_execute_total`, `django_db_execute_many_total`, `django_db_errors_total{type}` and
the `django_db_query_duration_seconds` histogram. That backend looks up its labelled children and
builds a timer and an error counter object on every statement; this one binds the children once
per connection, so a statement costs two clock reads, one increment and one observation.
"""

from __future__ import annotations

import time
from typing import Any

from django.db.backends.postgresql import base
from django_prometheus.db import (
    connection_errors_total,
    connections_total,
    errors_total,
    execute_many_total,
    execute_total,
    query_duration_seconds,
)


def metered(cursor_class: type, alias: str, vendor: str) -> type:
    """`cursor_class` recording the `django_db_*` metrics of database `alias`."""
    executed = execute_total.labels(alias, vendor)
    executed_many = execute_many_total.labels(alias, vendor)
    duration = query_duration_seconds.labels(alias, vendor)

    def failed(error: BaseException) -> None:
        errors_total.labels(alias, vendor, type(error).__name__).inc()

    class MeteredCursor(cursor_class):
        def execute(self, *args: Any, **kwargs: Any) -> Any:
            executed.inc()
            started = time.perf_counter()
            try:
                return super().execute(*args, **kwargs)
            except Exception as error:
                failed(error)
                raise
            finally:
                duration.observe(time.perf_counter() - started)

        def executemany(self, query: Any, params_seq: Any, *args: Any, **kwargs: Any) -> Any:
            params_seq = list(params_seq)
            executed.inc(len(params_seq))
            executed_many.inc(len(params_seq))
            started = time.perf_counter()
            try:
                return super().executemany(query, params_seq, *args, **kwargs)
            except Exception as error:
                failed(error)
                raise
            finally:
                duration.observe(time.perf_counter() - started)

    MeteredCursor.__name__ = MeteredCursor.__qualname__ = f"Metered{cursor_class.__name__}"
    return MeteredCursor


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        connections_total.labels(self.alias, self.vendor).inc()
        try:
            connection = super().get_new_connection(conn_params)
        except Exception:
            connection_errors_total.labels(self.alias, self.vendor).inc()
            raise
        connection.cursor_factory = _metered_class(connection.cursor_factory, self.alias)
        return connection


_CLASSES: dict[tuple[type, str], type] = {}


def _metered_class(cursor_class: type, alias: str) -> type:
    """One metered class per (cursor class, alias), shared by the process's connections."""
    key = (cursor_class, alias)
    if key not in _CLASSES:
        _CLASSES[key] = metered(cursor_class, alias, "postgresql")
    return _CLASSES[key]
