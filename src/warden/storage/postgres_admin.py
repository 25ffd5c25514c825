"""PostgreSQL outside the store: is a server there, and a throwaway schema to run on.

Used by ``warden.cli.cluster`` (local replica clusters), the benchmarks and the tests: the
database driver stays in the storage layer (ADR 0153) even for these two administrative steps.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["postgres_unreachable", "temporary_schema"]


def postgres_unreachable(url: str) -> str | None:
    """None when PostgreSQL answers at ``url``, else why not."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return None


@contextmanager
def temporary_schema(base_url: str, prefix: str = "warden_tmp") -> Iterator[str]:
    """A new, empty schema; yields a database URL that uses it (``search_path``)."""
    import psycopg
    from psycopg import sql

    schema = f"{prefix}_{secrets.token_hex(6)}"
    with psycopg.connect(base_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    separator = "&" if "?" in base_url else "?"
    try:
        yield f"{base_url}{separator}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(base_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
            )
