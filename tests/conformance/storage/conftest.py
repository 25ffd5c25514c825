"""The storage conformance suites (ADR 0150): each port's tests run on every implementation.

``store`` is parametrised over the in-memory store, SQLite and PostgreSQL (the PostgreSQL cases
come from ``tests/storage/conftest.py``'s ``backend``: their own schema each, skipped with the
reason when no server answers — a failure under CI=true, see ``tests/conftest.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.storage.conftest import Backend, _libpq_url, _shown, pg_base_url, pg_unreachable
from warden.storage.memory import MemoryStore

__all__ = ["Backend"]


@pytest.fixture(
    params=[
        pytest.param("memory"),
        pytest.param("sqlite"),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    """A migrated, empty store of each implementation."""
    if request.param == "memory":
        yield MemoryStore()
        return
    if request.param == "sqlite":
        from warden.storage.sql import sqlite_url_for

        backend = Backend("sqlite", sqlite_url_for(tmp_path))
        s = backend.open()
        s.migrate()
        yield s
        backend.close_all()
        return
    import secrets

    import psycopg
    from sqlalchemy.engine import make_url

    base = pg_base_url()
    error = pg_unreachable(base)
    if error is not None:
        pytest.skip(f"PostgreSQL not reachable at {_shown(base)}: {error}")
    schema = f"t_{secrets.token_hex(8)}"
    with psycopg.connect(_libpq_url(base), autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    backend = Backend("postgres", url.render_as_string(hide_password=False))
    try:
        s = backend.open()
        s.migrate()
        yield s
    finally:
        backend.close_all()
        with psycopg.connect(_libpq_url(base), autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
