"""Model instances from hand-written statements on hot paths.

A few per-request statements are written out (parameterised) because compiling them with the ORM
cost more than running them. These helpers keep those statements honest: the column lists come
from the models, and values pass through the fields' own database converters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.db import connection, models

M = TypeVar("M", bound=models.Model)


#: Returned by a write that should not wait for the disk (`flush_wait=False`), while the setting
#: DATABASE_ASYNC_BOOKKEEPING_COMMIT is true (the default): `set_config(..., true)` lasts until
#: the end of the write's transaction (the statement's own one in autocommit), so that commit
#: returns before its WAL record is flushed. Part of the statement, not a separate `SET LOCAL`,
#: because that would cost a round trip and a BEGIN/COMMIT pair of its own. Waiting for the flush
#: was the largest cost of the bot's per-request bookkeeping under load.
#:
#: Which transactions ride on it, whole:
#:
#: * validate: the attempt row with its counter UPDATEs (exercise, verdict, the profile's errors
#:   in the set), one statement in autocommit;
#: * next-action: the write that serves an exercise or moves the learner on (one UPDATE in
#:   autocommit in the common case, else the locked transaction): the profile's session and set
#:   counters, current exercise, streak, freeze, and a blocked profile's return to active. When
#:   that transaction created the profile or ended the user's plan, it waits for the disk instead
#:   (learning/sessions.py `profile_next_action`).
#:
#: What a crash can lose: only if the PostgreSQL server itself stops abruptly (power loss, kernel
#: or server crash; not an application or connection failure, and not a clean restart), the last
#: such commits before it, at most about 3 x `wal_writer_delay` (0.6 s by default), are lost, each
#: as a whole transaction: a learner's last answers are not recorded (no attempt, no counters) and
#: the profile may show the exercise before the last one as current. Nothing is half-written, and
#: nothing else is exposed: every other transaction (users created or changed through the API,
#: payments and the session they unlock, reports, notifications, staff edits) waits for the disk.
#: Set DATABASE_ASYNC_BOOKKEEPING_COMMIT=false to make these wait too.
NO_FLUSH_WAIT = "set_config('synchronous_commit', 'off', true)"


def _waits(flush_wait: bool) -> bool:
    """Whether a write's commit waits for the disk: asked to, or the trade-off is switched off."""
    return flush_wait or not settings.DATABASE_ASYNC_BOOKKEEPING_COMMIT


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


def update_row(
    instance: models.Model,
    fields: Sequence[str],
    *,
    flush_wait: bool = True,
    version: str | None = None,
) -> bool:
    """`UPDATE ... SET` the named fields of `instance` by primary key, like `save(update_fields)`.

    Each value goes through its field's `pre_save` (so `auto_now` stamps) and database preparation.
    `flush_wait=False`: the transaction's commit does not wait for the disk (`NO_FLUSH_WAIT`,
    when DATABASE_ASYNC_BOOKKEEPING_COMMIT is on). `version`: the row's `xmin` when it was read;
    the row is written only if it is still that version (no write came between). Returns whether
    the row was written.
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
    unchanged = "" if version is None else " AND xmin = %s::xid"
    with connection.cursor() as cursor:
        returning = "" if _waits(flush_wait) else f" RETURNING {NO_FLUSH_WAIT}"
        cursor.execute(
            f"UPDATE {table} SET {assignments} WHERE {key} = %s{unchanged}{returning}",  # noqa: S608
            [*values, instance.pk, *([] if version is None else [version])],
        )
        return bool(cursor.rowcount)


def insert_statement(instance: models.Model, *, flush_wait: bool = True) -> Statement:
    """`INSERT` of `instance` (every concrete field but an auto primary key) `RETURNING` its key.

    Values are prepared as `save()` would prepare them (`pre_save`, then database preparation).
    `flush_wait=False`: the transaction's commit does not wait for the disk (`NO_FLUSH_WAIT`,
    when DATABASE_ASYNC_BOOKKEEPING_COMMIT is on).
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
        f"RETURNING {meta.pk.column}" + ("" if _waits(flush_wait) else f", {NO_FLUSH_WAIT}"),
        values,
    )


def insert_or_get_statement(
    instance: models.Model, *, conflict: Sequence[str], computed: dict[str, str] | None = None
) -> Statement:
    """`INSERT` of `instance`, or the row that holds its `conflict` key already: `RETURNING` every
    column (`select_list` order) of whichever row it is, then `inserted` (true for a new row).

    The conflict arm is a no-op `DO UPDATE` (the first key column set to itself), not `DO
    NOTHING`: that way PostgreSQL returns, and locks, the existing row even when another
    transaction committed it after this statement's snapshot began, so two concurrent callers get
    the same row; its values are left as they were. `computed` maps columns to SQL expressions
    used instead of a parameter (a key from an earlier part of the same statement).
    """
    meta = instance._meta
    computed = computed or {}
    fields = [field for field in meta.concrete_fields if not isinstance(field, models.AutoField)]
    values = tuple(
        field.get_db_prep_save(field.pre_save(instance, add=True), connection)
        for field in fields
        if field.column not in computed
    )
    keys = [str(meta.get_field(name).column) for name in conflict]  # type: ignore[union-attr]
    table = meta.db_table
    return Statement(
        f"INSERT INTO {table} ({', '.join(field.column for field in fields)}) "  # noqa: S608
        f"VALUES ({', '.join(computed.get(field.column, '%s') for field in fields)}) "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {keys[0]} = EXCLUDED.{keys[0]} "
        f"RETURNING {select_list(type(instance), table)}, (xmax = 0) AS inserted",
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
