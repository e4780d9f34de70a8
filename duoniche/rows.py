"""Model instances from hand-written statements on hot paths.

A few per-request statements are written out (parameterised) because compiling them with the ORM
cost more than running them. These helpers keep those statements honest: the column lists come
from the models, and values pass through the fields' own database converters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import connection, models

M = TypeVar("M", bound=models.Model)


@dataclass(frozen=True)
class Statement:
    """A parameterised SQL statement (or fragment), to be run alone or composed into another."""

    sql: str
    params: tuple[Any, ...] = ()


def select_list(model: type[models.Model], alias: str) -> str:
    """`alias.col1, alias.col2, ...` for every concrete field of `model`, in field order."""
    return ", ".join(f"{alias}.{field.column}" for field in model._meta.concrete_fields)


def instance_from_row(model: type[M], values: Sequence[Any]) -> M:
    """An instance of `model` from values in `select_list` order, as the ORM would load it."""
    fields = model._meta.concrete_fields
    converted = [
        field.from_db_value(value, None, connection) if hasattr(field, "from_db_value") else value
        for field, value in zip(fields, values, strict=True)
    ]
    return model.from_db(connection.alias, [field.attname for field in fields], converted)


def update_row(instance: models.Model, fields: Sequence[str]) -> None:
    """`UPDATE ... SET` the named fields of `instance` by primary key, like `save(update_fields)`.

    Each value goes through its field's `pre_save` (so `auto_now` stamps) and database preparation.
    """
    meta = instance._meta
    chosen: list[models.Field[Any, Any]] = [
        meta.get_field(name)  # type: ignore[misc]
        for name in dict.fromkeys(fields)
    ]
    assignments = ", ".join(f"{field.column} = %s" for field in chosen)
    values = [
        field.get_db_prep_save(field.pre_save(instance, add=False), connection) for field in chosen
    ]
    table, key = meta.db_table, meta.pk.column
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {assignments} WHERE {key} = %s",  # noqa: S608
            [*values, instance.pk],
        )


def insert_statement(instance: models.Model) -> Statement:
    """`INSERT` of `instance` (every concrete field but an auto primary key) `RETURNING` its key.

    Values are prepared as `save()` would prepare them (`pre_save`, then database preparation).
    """
    meta = instance._meta
    fields = [field for field in meta.concrete_fields if not isinstance(field, models.AutoField)]
    columns = ", ".join(field.column for field in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    values = tuple(
        field.get_db_prep_save(field.pre_save(instance, add=True), connection) for field in fields
    )
    return Statement(
        f"INSERT INTO {meta.db_table} ({columns}) VALUES ({placeholders}) "  # noqa: S608
        f"RETURNING {meta.pk.column}",
        values,
    )


def run_with(statement: Statement, *alongside: Statement) -> Any:
    """Run `statement` with the data-modifying `alongside` statements as CTEs of one statement.

    One round trip, and atomic even outside a transaction. Each row may be changed by only one
    of the parts (PostgreSQL applies one of two changes to the same row in one statement).
    Returns the first value of the first row `statement` gives (None when it gives none).
    """
    ctes = ", ".join(f"alongside_{index} AS ({part.sql})" for index, part in enumerate(alongside))
    sql = f"WITH {ctes} {statement.sql}" if alongside else statement.sql
    params = [value for part in alongside for value in part.params] + list(statement.params)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone() if cursor.description else None
    return row[0] if row else None
