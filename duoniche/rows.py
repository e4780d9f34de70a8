"""Model instances from hand-written statements on hot paths.

A few per-request statements are written out (parameterised) because compiling them with the ORM
cost more than running them. These helpers keep those statements honest: the column lists come
from the models, and values pass through the fields' own database converters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from django.db import connection, models

M = TypeVar("M", bound=models.Model)


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
