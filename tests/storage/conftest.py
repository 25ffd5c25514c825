"""Fixtures for the storage suite: every test using ``store`` runs on SQLite and PostgreSQL.

PostgreSQL comes from ``WARDEN_TEST_DATABASE_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``); each test gets its own schema (selected with
``search_path``), dropped afterwards, so the suite can run in parallel under pytest-xdist.
When the server cannot be reached the PostgreSQL cases are skipped with the reason.
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from warden.storage.sql import SQLStore, open_store, sqlite_url_for

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def pg_base_url() -> str:
    return os.environ.get("WARDEN_TEST_DATABASE_URL", DEFAULT_PG_URL)


def _libpq_url(url: str) -> str:
    """The URL as psycopg (libpq) wants it: no SQLAlchemy driver suffix."""
    parsed = make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


def _shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


@functools.cache
def pg_unreachable(url: str) -> str | None:
    """None when PostgreSQL answers at ``url``, else the connection error (once per process)."""
    try:
        with psycopg.connect(_libpq_url(url), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return str(exc).strip() or type(exc).__name__
    return None


@dataclass
class Backend:
    """One empty database; ``open()`` makes a new store (engine) on it."""

    name: str
    url: str
    opened: list[SQLStore] = field(default_factory=list)

    def open(self) -> SQLStore:
        store = open_store(self.url)
        self.opened.append(store)
        return store

    def close_all(self) -> None:
        for store in self.opened:
            store.close()


@contextlib.contextmanager
def open_backend(kind: str, tmp_path: Path) -> Iterator[Backend]:
    """A SQLite file in ``tmp_path`` or a PostgreSQL schema of its own (dropped afterwards);
    skips with the reason when PostgreSQL does not answer."""
    if kind == "sqlite":
        sqlite_backend = Backend("sqlite", sqlite_url_for(tmp_path))
        try:
            yield sqlite_backend
        finally:
            sqlite_backend.close_all()
        return
    base = pg_base_url()
    error = pg_unreachable(base)
    if error is not None:
        pytest.skip(f"PostgreSQL not reachable at {_shown(base)}: {error}")
    schema = f"t_{secrets.token_hex(8)}"
    with psycopg.connect(_libpq_url(base), autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    pg_backend = Backend("postgres", url.render_as_string(hide_password=False))
    try:
        yield pg_backend
    finally:
        pg_backend.close_all()
        with psycopg.connect(_libpq_url(base), autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture(
    params=[pytest.param("sqlite"), pytest.param("postgres", marks=pytest.mark.postgres)]
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    with open_backend(request.param, tmp_path) as opened:
        yield opened


@pytest.fixture
def store(backend: Backend) -> SQLStore:
    """A migrated, empty store."""
    s = backend.open()
    s.migrate()
    return s
