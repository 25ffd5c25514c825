"""SQL storage over SQLAlchemy 2 Core and Alembic: SQLite (embedded default) and PostgreSQL.

    store = open_store(sqlite_url_for(data_dir))   # or "postgresql://user@host/db"
    store.migrate()                                # bring the schema to head (idempotent)

``SQLStore`` and ``open_store`` are loaded lazily so that importing this package (for example
for ``sqlite_url_for`` in the CLI) does not pull in SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from warden.storage.sql.urls import sqlite_url_for

if TYPE_CHECKING:
    from warden.storage.sql.store import SQLStore, open_store

__all__ = ["SQLStore", "open_store", "sqlite_url_for"]


def __getattr__(name: str) -> Any:
    if name in ("SQLStore", "open_store"):
        from warden.storage.sql import store

        return getattr(store, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
