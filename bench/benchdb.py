"""The throwaway PostgreSQL databases the benchmarks seed: created fresh, dropped afterwards."""

from __future__ import annotations

from typing import Any


def _admin(url: str) -> tuple[str, Any]:
    """The maintenance database's URL on the same server, and `url`'s database name."""
    from psycopg import sql

    return url.rsplit("/", 1)[0] + "/postgres", sql.Identifier(url.rsplit("/", 1)[1])


def drop_database(url: str) -> None:
    import psycopg
    from psycopg import sql

    admin_url, name = _admin(url)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))


def reset_database(url: str) -> None:
    """An empty database at `url` (dropped first if it exists)."""
    import psycopg
    from psycopg import sql

    drop_database(url)
    admin_url, name = _admin(url)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(name))
