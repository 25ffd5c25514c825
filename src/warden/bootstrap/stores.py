"""Which store a process uses, and the change channel that goes with it (ADR 0151).

The SQL store is chosen by URL (``database.url`` / ``WARDEN_DATABASE_URL``; SQLite in the data
folder by default). Any other store (an in-memory one in tests) is passed in already open
(``Warden(settings, store=...)``) and brings its own change channel (``change_channel()``).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from warden.config import Settings
from warden.core.clock import Clock
from warden.core.ports import Store
from warden.errors import InvalidParameterError
from warden.storage.sql import SQLStore, open_store, sqlite_url_for
from warden.storage.sql.changes import ChangeChannel, open_change_channel

__all__ = ["change_channel", "open_configured_store"]


@runtime_checkable
class HasChangeChannel(Protocol):
    """A store that is not SQL offers the channel its replicas share (one process: in memory)."""

    def change_channel(self, clock: Clock) -> ChangeChannel: ...


def open_configured_store(settings: Settings) -> Store:
    return open_store(settings.database_url or sqlite_url_for(settings.data_dir))


def change_channel(store: Store, clock: Clock) -> ChangeChannel:
    if isinstance(store, SQLStore):
        return open_change_channel(store, clock)
    if isinstance(store, HasChangeChannel):
        return store.change_channel(clock)
    raise InvalidParameterError("replication needs the SQL store")
