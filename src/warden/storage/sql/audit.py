"""The audit log over SQL: ``AuditLog`` (hash chain, attribution search, checkpoints, cursors).

Appenders serialise on the audit lock (an advisory lock on PostgreSQL, the write lock SQLite's
``BEGIN IMMEDIATE`` holds); ``append_chain`` is also used by ``TaskSQL``, whose issuance records
join the chain in the task's own transaction (ADR 0090). Attribution filters on fields inside a
record's JSON ``data`` (action, decision, policy ids among the reasons) run in the database:
``json_extract``/``json_each`` on SQLite, ``jsonb`` operators on PostgreSQL. The JSON text itself
is never rewritten (the chain hashes it).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, RowMapping

from warden.core.audit import GENESIS_HASH, prepare_draft, seal
from warden.core.governance import (
    AuditQuery,
    Checkpoint,
)
from warden.core.model import (
    AuditDraft,
    AuditRecord,
)
from warden.errors import (
    ConflictError,
)
from warden.storage.sql.engine import AUDIT_LOCK_KEY, SQLBase
from warden.storage.sql.rows import limit as _limit
from warden.storage.sql.rows import subtree_cte
from warden.storage.sql.tables import (
    agent_co_owners,
    agents,
    audit_checkpoints,
    audit_events,
    export_cursors,
    tasks,
)


def _audit(m: RowMapping) -> AuditRecord:
    return AuditRecord(
        seq=m["seq"],
        ts=m["ts"],
        type=m["type"],
        actor=m["actor"],
        data=json.loads(m["data"]),
        agent=m["agent"],
        task_id=m["task_id"],
        decision_id=m["decision_id"],
        prev_hash=m["prev_hash"],
        hash=m["hash"],
    )


def audit_rows(conn: Connection, query: sa.Select[Any]) -> list[AuditRecord]:
    return [_audit(m) for m in conn.execute(query).mappings()]


def _checkpoint(m: RowMapping) -> Checkpoint:
    return Checkpoint(
        seq=int(m["seq"]), head_hash=m["head_hash"], ts=m["ts"], kid=m["kid"], jws=m["jws"]
    )


def append_chain(
    base: SQLBase, conn: Connection, prepared: Sequence[tuple[AuditDraft, str]]
) -> list[AuditRecord]:
    """Seal and insert records after the chain head, inside the caller's transaction.

    The head is read under the audit lock (an advisory lock on PostgreSQL, the write lock
    SQLite's BEGIN IMMEDIATE holds), so every appender — the writer's batches and the
    issuance records beside task rows — extends one gap-free chain.
    """
    records: list[AuditRecord] = []
    rows: list[dict[str, Any]] = []
    base._lock(conn, AUDIT_LOCK_KEY)
    head = conn.execute(
        sa.select(audit_events.c.seq, audit_events.c.hash)
        .order_by(audit_events.c.seq.desc())
        .limit(1)
    ).first()
    seq, prev = (int(head[0]), str(head[1])) if head is not None else (0, GENESIS_HASH)
    for draft, data_text in prepared:
        seq += 1
        record = seal(seq, prev, draft)
        prev = record.hash
        records.append(record)
        rows.append(
            {
                "seq": seq,
                "ts": record.ts,
                "type": record.type,
                "actor": record.actor,
                "agent": record.agent,
                "task_id": record.task_id,
                "decision_id": record.decision_id,
                "data": data_text,
                "prev_hash": record.prev_hash,
                "hash": record.hash,
            }
        )
    conn.execute(sa.insert(audit_events), rows)
    return records


class AuditSQL(SQLBase):
    """``AuditLog``: the chain, attribution search, checkpoints and export cursors."""

    # -- audit -------------------------------------------------------------------------------

    def append_audit(self, drafts: Sequence[AuditDraft]) -> list[AuditRecord]:
        if not drafts:
            return []
        prepared = [prepare_draft(d) for d in drafts]
        with self._tx(write=True) as conn:
            return append_chain(self, conn, prepared)

    def list_audit(
        self,
        *,
        after_seq: int = 0,
        limit: int = 100,
        type_prefix: str | None = None,
        agent: str | None = None,
        task_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[AuditRecord]:
        """Ascending by seq after ``after_seq``; ``since`` is inclusive, ``until`` exclusive."""
        c = audit_events.c
        query = sa.select(audit_events).where(c.seq > after_seq).order_by(c.seq)
        if type_prefix:
            query = query.where(c.type.startswith(type_prefix, autoescape=True))
        if agent is not None:
            query = query.where(c.agent == agent)
        if task_id is not None:
            query = query.where(c.task_id == task_id)
        if since is not None:
            query = query.where(c.ts >= float(since))
        if until is not None:
            query = query.where(c.ts < float(until))
        with self._tx(write=False) as conn:
            return audit_rows(conn, query.limit(_limit(limit)))

    def iter_audit(self, *, batch: int = 1000) -> Iterator[AuditRecord]:
        size = max(1, batch)
        last = 0
        while True:
            query = (
                sa.select(audit_events)
                .where(audit_events.c.seq > last)
                .order_by(audit_events.c.seq)
                .limit(size)
            )
            with self._tx(write=False) as conn:
                page = [_audit(m) for m in conn.execute(query).mappings()]
            yield from page
            if len(page) < size:
                return
            last = page[-1].seq

    def audit_head(self) -> tuple[int, str]:
        with self._tx(write=False) as conn:
            head = conn.execute(
                sa.select(audit_events.c.seq, audit_events.c.hash)
                .order_by(audit_events.c.seq.desc())
                .limit(1)
            ).first()
        if head is None:
            return 0, GENESIS_HASH
        return int(head[0]), str(head[1])

    # -- audit checkpoints and export ---------------------------------------------------------
    def create_checkpoint(self, checkpoint: Checkpoint) -> None:
        conflict = f"a checkpoint at seq {checkpoint.seq} already exists"
        with self._tx(write=True, conflict=conflict) as conn:
            conn.execute(
                sa.insert(audit_checkpoints).values(
                    seq=checkpoint.seq,
                    head_hash=checkpoint.head_hash,
                    ts=float(checkpoint.ts),
                    kid=checkpoint.kid,
                    jws=checkpoint.jws,
                )
            )

    def list_checkpoints(self, *, after_seq: int = 0, limit: int = 1000) -> list[Checkpoint]:
        query = (
            sa.select(audit_checkpoints)
            .where(audit_checkpoints.c.seq > after_seq)
            .order_by(audit_checkpoints.c.seq)
            .limit(_limit(limit))
        )
        with self._tx(write=False) as conn:
            return [_checkpoint(m) for m in conn.execute(query).mappings()]

    def iter_checkpoints(self, *, batch: int = 1000) -> Iterator[Checkpoint]:
        last = 0
        while True:
            page = self.list_checkpoints(after_seq=last, limit=batch)
            yield from page
            if len(page) < batch:
                return
            last = page[-1].seq

    def latest_checkpoint(self) -> Checkpoint | None:
        query = sa.select(audit_checkpoints).order_by(audit_checkpoints.c.seq.desc()).limit(1)
        with self._tx(write=False) as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else _checkpoint(row)

    def fetch_export_cursor(self, name: str) -> int:
        with self._tx(write=False) as conn:
            value = conn.execute(
                sa.select(export_cursors.c.last_seq).where(export_cursors.c.name == name)
            ).scalar_one_or_none()
        return 0 if value is None else int(value)

    def advance_export_cursor(self, name: str, *, expected: int, to: int, at: float) -> None:
        moved = f"export cursor `{name}` moved: another exporter is running"
        with self._tx(write=True, conflict=moved) as conn:
            if expected == 0:
                current = conn.execute(
                    sa.select(export_cursors.c.last_seq).where(export_cursors.c.name == name)
                ).scalar_one_or_none()
                if current is None:
                    conn.execute(
                        sa.insert(export_cursors).values(name=name, last_seq=to, updated_at=at)
                    )
                    return
            result = conn.execute(
                sa.update(export_cursors)
                .where(export_cursors.c.name == name, export_cursors.c.last_seq == expected)
                .values(last_seq=to, updated_at=float(at))
            )
            if result.rowcount == 0:
                raise ConflictError(moved)

    # -- attribution ---------------------------------------------------------------------------
    def _json_field(self, conn: Connection, key: str) -> sa.ColumnElement[Any]:
        data = audit_events.c.data
        if conn.dialect.name == "postgresql":
            field: sa.ColumnElement[Any] = sa.cast(data, JSONB)[key].astext
            return field
        return sa.func.json_extract(data, f"$.{key}")

    def _has_reason(self, conn: Connection, policy: str) -> sa.ColumnElement[bool]:
        data = audit_events.c.data
        if conn.dialect.name == "postgresql":
            reasons = sa.cast(data, JSONB)["reasons"]
            return reasons.op("@>")(sa.cast(sa.literal(json.dumps([policy])), JSONB))
        each = sa.func.json_each(data, "$.reasons").table_valued("value")
        return sa.exists(sa.select(sa.literal(1)).select_from(each).where(each.c.value == policy))

    def search_audit(
        self, query: AuditQuery, *, after_seq: int = 0, limit: int = 100
    ) -> list[AuditRecord]:
        c = audit_events.c
        q = query
        stmt = sa.select(audit_events).where(c.seq > after_seq).order_by(c.seq)
        if q.type_prefix:
            stmt = stmt.where(c.type.startswith(q.type_prefix, autoescape=True))
        if q.agent is not None:
            stmt = stmt.where(c.agent == q.agent)
        if q.decision_id is not None:
            stmt = stmt.where(c.decision_id == q.decision_id)
        if q.owner is not None:
            owned = sa.union(
                sa.select(agents.c.name).where(agents.c.owner == q.owner),
                sa.select(agent_co_owners.c.agent_name).where(
                    agent_co_owners.c.human_id == q.owner
                ),
            )
            stmt = stmt.where(c.agent.in_(owned))
        if q.task_id is not None:
            if q.subtree:
                stmt = stmt.where(c.task_id.in_(sa.select(subtree_cte(q.task_id).c.id)))
            else:
                stmt = stmt.where(c.task_id == q.task_id)
        if q.on_behalf_of is not None:
            stmt = stmt.where(
                c.task_id.in_(sa.select(tasks.c.id).where(tasks.c.on_behalf_of == q.on_behalf_of))
            )
        if q.since is not None:
            stmt = stmt.where(c.ts >= float(q.since))
        if q.until is not None:
            stmt = stmt.where(c.ts < float(q.until))
        with self._tx(write=False) as conn:
            if q.action is not None:
                stmt = stmt.where(self._json_field(conn, "action") == q.action)
            if q.decision is not None:
                stmt = stmt.where(self._json_field(conn, "decision") == q.decision)
            if q.policy is not None:
                stmt = stmt.where(self._has_reason(conn, q.policy))
            return audit_rows(conn, stmt.limit(_limit(limit)))
