"""Reading one row by key: the shape every ``fetch_*`` method of the store shares."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from warden.errors import NotFoundError

Tx = Callable[..., AbstractContextManager[Connection]]


def fetch_one(tx: Tx, query: sa.Select[Any], missing: str) -> RowMapping:
    """The one row ``query`` selects, in a read transaction; ``NotFoundError(missing)`` if none."""
    with tx(write=False) as conn:
        row = conn.execute(query).mappings().first()
    if row is None:
        raise NotFoundError(missing)
    return row
