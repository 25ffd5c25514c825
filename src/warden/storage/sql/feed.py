"""Replicas and the change log: ``ChangeFeed`` over SQL (``changes.py`` carries the channels)."""

from __future__ import annotations

import json

import sqlalchemy as sa

from warden.core.model import (
    Change,
    DenyChanges,
    Replica,
)
from warden.storage.sql.codec import dump
from warden.storage.sql.engine import SQLBase
from warden.storage.sql.rows import limit as _limit
from warden.storage.sql.tables import (
    agents,
    change_log,
    credentials,
    replicas,
)


class ChangeFeedSQL(SQLBase):
    """``ChangeFeed``: heartbeats, the change log and the deny freshness poll (ADR 0092)."""

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
            .limit(_limit(limit))
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
