"""Opening stores: URLs, SQLite connection settings, errors before any schema exists."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from warden.core.audit import verify_chain
from warden.core.model import AuditDraft
from warden.errors import InvalidParameterError, StorageError
from warden.storage.sql import open_store, sqlite_url_for


def test_sqlite_url_for_points_at_warden_db(tmp_path: Path) -> None:
    odd = tmp_path / "with space%20and?hash#"
    odd.mkdir()
    url = sqlite_url_for(odd)
    assert url.startswith("sqlite:///")
    store = open_store(url)
    try:
        store.migrate()
        assert (odd / "warden.db").is_file()
    finally:
        store.close()


def test_postgresql_urls_use_psycopg_3() -> None:
    for url in ("postgresql://u@db.example:5432/w", "postgres://u@db.example/w"):
        store = open_store(url)  # no connection is made until first use
        try:
            assert store.engine.dialect.name == "postgresql"
            assert store.engine.dialect.driver == "psycopg"
        finally:
            store.close()


def test_unsupported_or_invalid_urls_are_rejected() -> None:
    with pytest.raises(InvalidParameterError, match="unsupported"):
        open_store("mysql://u@h/db")
    with pytest.raises(InvalidParameterError):
        open_store("not a url")


def test_sqlite_connections_use_wal_foreign_keys_and_busy_timeout(tmp_path: Path) -> None:
    store = open_store(sqlite_url_for(tmp_path))
    try:
        store.migrate()
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
    finally:
        store.close()


@pytest.mark.parametrize(
    "url_for",
    [
        lambda tmp: sqlite_url_for(tmp / "missing" / "dir"),
        lambda tmp: "postgresql://postgres@127.0.0.1:1/nothing?connect_timeout=2",
    ],
    ids=["sqlite", "postgres"],
)
def test_unreachable_database_raises_storage_error(tmp_path: Path, url_for: object) -> None:
    store = open_store(url_for(tmp_path))  # type: ignore[operator]
    try:
        with pytest.raises(StorageError) as info:
            store.migrate()
        assert isinstance(info.value.__cause__, SQLAlchemyError)
        with pytest.raises(StorageError):
            store.audit_head()
    finally:
        store.close()


def test_in_memory_sqlite_is_shared_between_threads() -> None:
    store = open_store("sqlite://")
    try:
        store.migrate()
        errors: list[BaseException] = []

        def work(i: int) -> None:
            try:
                for j in range(20):
                    store.append_audit([AuditDraft(ts=1.0, type="t", actor=f"{i}", data={"j": j})])
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        result = verify_chain(store.iter_audit())
        assert result.ok
        assert result.records == 80
    finally:
        store.close()


def test_store_without_schema_reports_storage_error(tmp_path: Path) -> None:
    store = open_store(sqlite_url_for(tmp_path))
    try:
        with pytest.raises(StorageError):
            store.fetch_agent("bot")
        with store.engine.connect() as conn:  # nothing was created behind our back
            assert sa.inspect(conn).get_table_names() == []
    finally:
        store.close()
