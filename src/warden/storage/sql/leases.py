"""Downstream leases: ``LeaseStore`` over SQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from warden.core.model import (
    Lease,
    LeaseKind,
    LeaseState,
    TaskStatus,
)
from warden.errors import (
    NotFoundError,
)
from warden.storage.sql.engine import SQLBase
from warden.storage.sql.rows import fetch_one
from warden.storage.sql.tables import (
    leases,
    tasks,
)

_OPEN_LEASES = (LeaseState.CREATING.value, LeaseState.ACTIVE.value, LeaseState.REVOKING.value)


def _lease_row(lease: Lease) -> dict[str, Any]:
    return {
        "id": lease.id,
        "task_id": lease.task_id,
        "agent_name": lease.agent_name,
        "kind": lease.kind.value,
        "target": lease.target,
        "principal": lease.principal,
        "created_at": float(lease.created_at),
        "expires_at": float(lease.expires_at),
        "state": lease.state.value,
        "kid": lease.kid,
        "updated_at": float(lease.updated_at),
        "revoked_at": None if lease.revoked_at is None else float(lease.revoked_at),
        "attempts": int(lease.attempts),
        "last_error": lease.last_error,
    }


def _lease(m: RowMapping) -> Lease:
    return Lease(
        id=m["id"],
        task_id=m["task_id"],
        agent_name=m["agent_name"],
        kind=LeaseKind(m["kind"]),
        target=m["target"],
        principal=m["principal"],
        created_at=m["created_at"],
        expires_at=m["expires_at"],
        state=LeaseState(m["state"]),
        kid=m["kid"],
        updated_at=m["updated_at"],
        revoked_at=m["revoked_at"],
        attempts=m["attempts"],
        last_error=m["last_error"],
    )


class LeaseSQL(SQLBase):
    """``LeaseStore``."""

    def create_lease(self, lease: Lease) -> None:
        with self._tx(write=True, conflict=f"lease `{lease.id}` already exists") as conn:
            conn.execute(sa.insert(leases).values(**_lease_row(lease)))

    def fetch_lease(self, lease_id: str) -> Lease:
        return _lease(
            fetch_one(
                self._tx,
                sa.select(leases).where(leases.c.id == lease_id),
                f"lease `{lease_id}` not found",
            )
        )

    def update_lease(self, lease: Lease) -> None:
        values = _lease_row(lease)
        del values["id"]
        with self._tx(write=True) as conn:
            result = conn.execute(sa.update(leases).where(leases.c.id == lease.id).values(values))
            if result.rowcount == 0:
                raise NotFoundError(f"lease `{lease.id}` not found")

    def list_leases(
        self,
        *,
        task_id: str | None = None,
        states: Sequence[LeaseState] | None = None,
        target: str | None = None,
    ) -> list[Lease]:
        query = sa.select(leases).order_by(leases.c.created_at, leases.c.id)
        if task_id is not None:
            query = query.where(leases.c.task_id == task_id)
        if states is not None:
            query = query.where(leases.c.state.in_([LeaseState(s).value for s in states]))
        if target is not None:
            query = query.where(leases.c.target == target)
        with self._tx(write=False) as conn:
            return [_lease(m) for m in conn.execute(query).mappings()]

    def list_leases_of_ended_tasks(self) -> list[Lease]:
        query = (
            sa.select(leases)
            .join(tasks, tasks.c.id == leases.c.task_id)
            .where(leases.c.state.in_(_OPEN_LEASES), tasks.c.status != TaskStatus.ACTIVE.value)
            .order_by(leases.c.created_at, leases.c.id)
        )
        with self._tx(write=False) as conn:
            return [_lease(m) for m in conn.execute(query).mappings()]
