"""Store methods for the credential lifecycle: DPoP replay, leases, sealed keys, replicas, and
the change log. Mixed into ``SQLStore``; same rules (one transaction per method, translated
driver errors)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from warden.core.model import (
    Change,
    DenyChanges,
    Lease,
    LeaseKind,
    LeaseState,
    Replica,
    StoredKey,
    TaskStatus,
)
from warden.errors import NotFoundError
from warden.storage.sql.codec import dump
from warden.storage.sql.rows import fetch_one
from warden.storage.sql.tables import (
    agents,
    change_log,
    credentials,
    dpop_proofs,
    leases,
    replicas,
    signing_keys,
    tasks,
)

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql as pg_dialect
    from sqlalchemy.dialects import sqlite as sqlite_dialect

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


def _key_row(key: StoredKey) -> dict[str, Any]:
    return {
        "kid": key.kid,
        "generation": int(key.generation),
        "algorithm": key.algorithm,
        "public_jwk": dump(key.public_jwk),
        "sealed_private": key.sealed_private,
        "created_at": float(key.created_at),
        "superseded_at": key.superseded_at,
        "retired_at": key.retired_at,
    }


def _key(m: RowMapping) -> StoredKey:
    return StoredKey(
        kid=m["kid"],
        generation=m["generation"],
        algorithm=m["algorithm"],
        public_jwk=json.loads(m["public_jwk"]),
        sealed_private=m["sealed_private"],
        created_at=m["created_at"],
        superseded_at=m["superseded_at"],
        retired_at=m["retired_at"],
    )


class LifecycleStoreMixin:
    """See the module docstring. Relies on ``SQLStore._tx`` and ``SQLStore._insert``."""

    __slots__ = ()

    if TYPE_CHECKING:

        def _tx(
            self, *, write: bool, conflict: str | None = None
        ) -> AbstractContextManager[Connection]: ...

        def _insert(
            self, conn: Connection, table: sa.Table
        ) -> pg_dialect.Insert | sqlite_dialect.Insert: ...

    # -- DPoP proof replay -----------------------------------------------------------------------

    def remember_proof(self, key: str, *, expires_at: float, now: float) -> bool:
        with self._tx(write=True) as conn:
            insert = self._insert(conn, dpop_proofs).values(key=key, expires_at=float(expires_at))
            # An expired entry may be reused; a live one makes this a replay (no row back).
            # RETURNING, not rowcount: psycopg reports -1 for an upsert that did nothing.
            row = conn.execute(
                insert.on_conflict_do_update(
                    index_elements=["key"],
                    set_={"expires_at": insert.excluded.expires_at},
                    where=dpop_proofs.c.expires_at <= float(now),
                ).returning(dpop_proofs.c.key)
            ).first()
            return row is not None

    def prune_proofs(self, *, now: float) -> int:
        with self._tx(write=True) as conn:
            result = conn.execute(sa.delete(dpop_proofs).where(dpop_proofs.c.expires_at <= now))
            return int(result.rowcount or 0)

    # -- leases ----------------------------------------------------------------------------------

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

    # -- signing keys ----------------------------------------------------------------------------

    def create_signing_key(self, key: StoredKey) -> None:
        conflict = f"signing key generation {key.generation} already exists"
        with self._tx(write=True, conflict=conflict) as conn:
            conn.execute(sa.insert(signing_keys).values(**_key_row(key)))

    def list_signing_keys(self) -> list[StoredKey]:
        query = sa.select(signing_keys).order_by(signing_keys.c.generation)
        with self._tx(write=False) as conn:
            return [_key(m) for m in conn.execute(query).mappings()]

    def update_signing_key(self, key: StoredKey) -> None:
        values = _key_row(key)
        del values["kid"]
        with self._tx(write=True) as conn:
            result = conn.execute(
                sa.update(signing_keys).where(signing_keys.c.kid == key.kid).values(values)
            )
            if result.rowcount == 0:
                raise NotFoundError(f"signing key `{key.kid}` not found")

    def last_expiry_signed_by(self, kid: str) -> float | None:
        with self._tx(write=False) as conn:
            creds = conn.execute(
                sa.select(sa.func.max(credentials.c.expires_at)).where(credentials.c.kid == kid)
            ).scalar_one_or_none()
            minted = conn.execute(
                sa.select(sa.func.max(leases.c.expires_at)).where(leases.c.kid == kid)
            ).scalar_one_or_none()
        found = [float(v) for v in (creds, minted) if v is not None]
        return max(found) if found else None

    # -- replicas --------------------------------------------------------------------------------

    def upsert_replica(self, replica: Replica) -> None:
        values = {
            "id": replica.id,
            "url": replica.url,
            "started_at": float(replica.started_at),
            "last_seen": float(replica.last_seen),
        }
        with self._tx(write=True) as conn:
            insert = self._insert(conn, replicas).values(**values)
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=["id"],
                    set_={"url": values["url"], "last_seen": values["last_seen"]},
                )
            )

    def list_replicas(self, *, seen_since: float) -> list[Replica]:
        query = (
            sa.select(replicas)
            .where(replicas.c.last_seen >= float(seen_since))
            .order_by(replicas.c.started_at, replicas.c.id)
        )
        with self._tx(write=False) as conn:
            return [
                Replica(
                    id=m["id"], url=m["url"], started_at=m["started_at"], last_seen=m["last_seen"]
                )
                for m in conn.execute(query).mappings()
            ]

    def delete_replica(self, replica_id: str) -> None:
        with self._tx(write=True) as conn:
            conn.execute(sa.delete(replicas).where(replicas.c.id == replica_id))

    # -- change log --------------------------------------------------------------------------------

    def append_change(self, change: Change, *, ts: float) -> int:
        with self._tx(write=True) as conn:
            result = conn.execute(
                sa.insert(change_log).values(
                    ts=float(ts), origin=change.origin, kind=change.kind, data=dump(change.data)
                )
            )
            seq = result.inserted_primary_key
            assert seq is not None
            return int(seq[0])

    def list_changes(self, *, after_seq: int, limit: int = 500) -> list[tuple[int, Change]]:
        query = (
            sa.select(change_log)
            .where(change_log.c.seq > int(after_seq))
            .order_by(change_log.c.seq)
            .limit(max(0, int(limit)))
        )
        with self._tx(write=False) as conn:
            return [
                (
                    int(m["seq"]),
                    Change(kind=m["kind"], data=json.loads(m["data"]), origin=m["origin"]),
                )
                for m in conn.execute(query).mappings()
            ]

    def last_change_seq(self) -> int:
        with self._tx(write=False) as conn:
            seq = conn.execute(sa.select(sa.func.max(change_log.c.seq))).scalar_one_or_none()
        return int(seq or 0)

    def prune_changes(self, *, before: float) -> int:
        with self._tx(write=True) as conn:
            result = conn.execute(sa.delete(change_log).where(change_log.c.ts < float(before)))
            return int(result.rowcount or 0)

    def deny_changes(self, *, since: float, now: float) -> DenyChanges:
        revoked = sa.select(credentials.c.jti, credentials.c.expires_at).where(
            credentials.c.revoked_at > float(since), credentials.c.expires_at > float(now)
        )
        inactive = sa.select(agents.c.name, agents.c.status).where(
            agents.c.updated_at > float(since), agents.c.status != "active"
        )
        with self._tx(write=False) as conn:
            jtis = {str(j): float(e) for j, e in conn.execute(revoked)}
            names = {str(n): str(s) for n, s in conn.execute(inactive)}
        return DenyChanges(jtis, names)
