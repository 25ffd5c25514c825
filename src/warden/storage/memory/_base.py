"""What every in-memory aggregate shares: one re-entrant lock, and values copied as stored."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any, TypeVar

from warden.core.audit import stored_json
from warden.errors import InvalidParameterError

T = TypeVar("T")


class MemoryBase:
    """The lock every method holds for its whole body: a method is one transaction."""

    def __init__(self) -> None:
        self._lock = threading.RLock()


def stored(value: T) -> T:
    """``value`` as a database would give it back: JSON fields round-tripped (a caller's later
    change to a dict it passed in, or to one it got back, never reaches the store)."""
    if not dataclasses.is_dataclass(value) or isinstance(value, type):
        return value
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(value):
        item = getattr(value, f.name)
        if isinstance(item, dict):
            changes[f.name] = stored_json(item)[1]
        elif isinstance(item, list | tuple):
            changes[f.name] = tuple(stored_json(list(item))[1])
    return dataclasses.replace(value, **changes) if changes else value


def limit(value: int) -> int:
    """As ``LIMIT``: negative means none (0 rows), like the SQL store's clamp."""
    return max(0, int(value))


def before_cursor(rows: dict[str, Any], after: str) -> tuple[float, str]:
    """The (created_at, id) keyset cursor of row ``after`` (InvalidParameterError if unknown)."""
    row = rows.get(after)
    if row is None:
        raise InvalidParameterError(f"unknown page cursor `{after}`")
    return float(row.created_at), after
