"""Query shapes the aggregates share: one row by key, LIMIT, keyset paging, the task subtree."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from warden.errors import InvalidParameterError, NotFoundError
from warden.storage.sql.tables import tasks

Tx = Callable[..., AbstractContextManager[Connection]]


def fetch_one(tx: Tx, query: sa.Select[Any], missing: str) -> RowMapping:
    """The one row ``query`` selects, in a read transaction; ``NotFoundError(missing)`` if none."""
    with tx(write=False) as conn:
        row = conn.execute(query).mappings().first()
    if row is None:
        raise NotFoundError(missing)
    return row


def limit(value: int) -> int:
    """A LIMIT for ``value`` rows: a negative LIMIT means "no limit" on SQLite and is an error
    on PostgreSQL, so it is clamped to 0."""
    return max(0, int(value))


def before(conn: Connection, table: sa.Table, after: str) -> sa.ColumnElement[bool]:
    """Keyset paging, newest first: rows strictly before the row ``after`` (by created_at, id)."""
    cursor = (
        conn.execute(sa.select(table.c.created_at).where(table.c.id == after)).scalars().first()
    )
    if cursor is None:
        raise InvalidParameterError(f"unknown page cursor `{after}`")
    return sa.tuple_(table.c.created_at, table.c.id) < sa.tuple_(
        sa.literal(cursor, sa.Double()), sa.literal(after)
    )


def subtree_cte(task_id: str) -> sa.CTE:
    """Recursive CTE of a task id and every descendant's id (delegation subtree)."""
    root = sa.select(tasks.c.id).where(tasks.c.id == task_id).cte("subtree", recursive=True)
    child = sa.select(tasks.c.id).join(root, tasks.c.parent_id == root.c.id)
    return root.union_all(child)
