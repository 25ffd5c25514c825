"""System of record: the ``Store`` implementation (``warden.storage.sql``).

Re-exports the storage entry points lazily so that importing this package stays cheap; the
SQLAlchemy machinery loads on first use of ``SQLStore`` or ``open_store``.
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
