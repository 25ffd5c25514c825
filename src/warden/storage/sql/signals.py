"""The Shared Signals half of ``SQLStore``: SSF streams and the outbox of signed SETs.

The outbox is filled from the audit log in one transaction with the move of the ``ssf`` export
cursor (an optimistic compare-and-set: a replica that lost the race rolls back), and the unique
``(stream_id, audit_seq, event_type)`` key makes a repeat impossible. Push delivery takes a
short lease per stream, so one replica at a time drains a stream, oldest first.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from warden.core.model import AuditRecord
from warden.core.signals import NewEvent, OutboxEntry, Stream, StreamStatus
from warden.errors import ConflictError, NotFoundError
from warden.storage.sql.audit import audit_rows
from warden.storage.sql.engine import SQLBase
from warden.storage.sql.tables import audit_events, export_cursors, ssf_outbox, ssf_streams

MAX_ERROR = 500


def _stream_row(s: Stream) -> dict[str, Any]:
    return {
        "id": s.id,
        "audience": s.audience,
        "description": s.description,
        "delivery_method": s.delivery_method,
        "endpoint_url": s.endpoint_url,
        "authorization_header": s.authorization_header,
        "poll_token_hash": s.poll_token_hash,
        "events_requested": json.dumps(list(s.events_requested)),
        "status": s.status.value,
        "status_reason": s.status_reason,
        "created_by": s.created_by,
        "created_at": s.created_at,
        "updated_at": s.updated_at,
    }


def _stream(m: RowMapping) -> Stream:
    return Stream(
        id=m["id"],
        audience=m["audience"],
        description=m["description"],
        delivery_method=m["delivery_method"],
        endpoint_url=m["endpoint_url"],
        authorization_header=m["authorization_header"],
        poll_token_hash=m["poll_token_hash"],
        events_requested=tuple(json.loads(m["events_requested"])),
        status=StreamStatus(m["status"]),
        status_reason=m["status_reason"],
        created_by=m["created_by"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )


def _entry(m: RowMapping) -> OutboxEntry:
    return OutboxEntry(
        id=int(m["id"]),
        stream_id=m["stream_id"],
        jti=m["jti"],
        event_type=m["event_type"],
        audit_seq=m["audit_seq"],
        token=m["token"],
        created_at=m["created_at"],
        attempts=int(m["attempts"]),
        next_attempt_at=m["next_attempt_at"],
        delivered_at=m["delivered_at"],
        outcome=m["outcome"],
        last_error=m["last_error"],
    )


def _new_row(e: NewEvent, at: float) -> dict[str, Any]:
    return {
        "stream_id": e.stream_id,
        "jti": e.jti,
        "event_type": e.event_type,
        "audit_seq": e.audit_seq,
        "token": e.token,
        "created_at": at,
        "attempts": 0,
        "next_attempt_at": at,
    }


class SignalsSQL(SQLBase):
    """SSF streams and outbox on SQLite and PostgreSQL."""

    # -- streams -------------------------------------------------------------------------------
    def create_stream(self, stream: Stream) -> None:
        with self._tx(write=True, conflict=f"stream `{stream.id}` exists") as conn:
            conn.execute(sa.insert(ssf_streams).values(**_stream_row(stream)))

    def fetch_stream(self, stream_id: str) -> Stream:
        with self._tx(write=False) as conn:
            row = (
                conn.execute(sa.select(ssf_streams).where(ssf_streams.c.id == stream_id))
                .mappings()
                .first()
            )
        if row is None:
            raise NotFoundError(f"stream `{stream_id[:100]}` not found")
        return _stream(row)

    def list_streams(self) -> list[Stream]:
        with self._tx(write=False) as conn:
            rows = conn.execute(sa.select(ssf_streams).order_by(ssf_streams.c.created_at))
            return [_stream(m) for m in rows.mappings()]

    def update_stream(self, stream: Stream) -> None:
        values = _stream_row(stream)
        del values["id"], values["created_at"], values["created_by"]
        with self._tx(write=True) as conn:
            done = conn.execute(
                sa.update(ssf_streams).where(ssf_streams.c.id == stream.id).values(**values)
            )
            if done.rowcount == 0:
                raise NotFoundError(f"stream `{stream.id}` not found")

    def delete_stream(self, stream_id: str) -> None:
        with self._tx(write=True) as conn:
            conn.execute(sa.delete(ssf_outbox).where(ssf_outbox.c.stream_id == stream_id))
            done = conn.execute(sa.delete(ssf_streams).where(ssf_streams.c.id == stream_id))
            if done.rowcount == 0:
                raise NotFoundError(f"stream `{stream_id[:100]}` not found")

    # -- filling the outbox ---------------------------------------------------------------------
    def signal_records(
        self, *, after_seq: int, types: Sequence[str], limit: int
    ) -> tuple[list[AuditRecord], int]:
        c = audit_events.c
        with self._tx(write=False) as conn:
            head = conn.execute(sa.select(sa.func.max(c.seq))).scalar_one_or_none() or 0
            records: list[AuditRecord] = []
            if types:
                query = (
                    sa.select(audit_events)
                    .where(c.seq > after_seq, c.seq <= head, c.type.in_(list(types)))
                    .order_by(c.seq)
                    .limit(max(1, limit))
                )
                records = audit_rows(conn, query)
        if types and len(records) >= limit:
            return records, records[-1].seq
        return records, max(int(head), after_seq)

    def enqueue_signals(
        self, events: Sequence[NewEvent], *, cursor: str, expected: int, to: int, at: float
    ) -> None:
        moved = f"cursor `{cursor}` moved: another replica queued these events"
        with self._tx(write=True, conflict=moved) as conn:
            current = conn.execute(
                sa.select(export_cursors.c.last_seq).where(export_cursors.c.name == cursor)
            ).scalar_one_or_none()
            if current is None:
                conn.execute(
                    sa.insert(export_cursors).values(name=cursor, last_seq=to, updated_at=at)
                )
            else:
                result = conn.execute(
                    sa.update(export_cursors)
                    .where(export_cursors.c.name == cursor, export_cursors.c.last_seq == expected)
                    .values(last_seq=to, updated_at=float(at))
                )
                if result.rowcount == 0:
                    raise ConflictError(moved)
            if events:
                conn.execute(sa.insert(ssf_outbox), [_new_row(e, at) for e in events])

    def add_signal(self, event: NewEvent, *, at: float) -> None:
        with self._tx(write=True) as conn:
            conn.execute(sa.insert(ssf_outbox).values(**_new_row(event, at)))

    # -- delivering ------------------------------------------------------------------------------
    def claim_stream(self, stream_id: str, owner: str, *, until: float, now: float) -> bool:
        s = ssf_streams.c
        with self._tx(write=True) as conn:
            done = conn.execute(
                sa.update(ssf_streams)
                .where(
                    s.id == stream_id,
                    sa.or_(s.lease_until.is_(None), s.lease_until < now, s.lease_owner == owner),
                )
                .values(lease_owner=owner, lease_until=until)
            )
            return bool(done.rowcount)

    def pending_signals(self, stream_id: str, *, limit: int) -> list[OutboxEntry]:
        o = ssf_outbox.c
        query = (
            sa.select(ssf_outbox)
            .where(o.stream_id == stream_id, o.delivered_at.is_(None))
            .order_by(o.id)
            .limit(max(1, limit))
        )
        with self._tx(write=False) as conn:
            return [_entry(m) for m in conn.execute(query).mappings()]

    def signal_attempted(
        self,
        entry_id: int,
        *,
        ok: bool,
        outcome: str | None,
        error: str | None,
        at: float,
        retry_at: float,
    ) -> None:
        values: dict[str, Any] = {
            "attempts": ssf_outbox.c.attempts + 1,
            "last_error": error[:MAX_ERROR] if error else None,
        }
        if ok:
            values |= {"delivered_at": at, "outcome": outcome}
        else:
            values["next_attempt_at"] = retry_at
        with self._tx(write=True) as conn:
            conn.execute(sa.update(ssf_outbox).where(ssf_outbox.c.id == entry_id).values(**values))

    def acknowledge_signals(
        self, stream_id: str, jtis: Sequence[str], *, outcome: str, error: str | None, at: float
    ) -> int:
        if not jtis:
            return 0
        o = ssf_outbox.c
        with self._tx(write=True) as conn:
            done = conn.execute(
                sa.update(ssf_outbox)
                .where(o.stream_id == stream_id, o.jti.in_(list(jtis)), o.delivered_at.is_(None))
                .values(
                    delivered_at=at,
                    outcome=outcome,
                    last_error=error[:MAX_ERROR] if error else None,
                )
            )
            return int(done.rowcount)

    def prune_signals(self, *, before: float) -> int:
        o = ssf_outbox.c
        with self._tx(write=True) as conn:
            done = conn.execute(
                sa.delete(ssf_outbox).where(o.delivered_at.is_not(None), o.delivered_at < before)
            )
            return int(done.rowcount)

    def count_pending_signals(self) -> dict[str, int]:
        o, s = ssf_outbox.c, ssf_streams.c
        query = (
            sa.select(s.delivery_method, sa.func.count())
            .select_from(ssf_outbox.join(ssf_streams, o.stream_id == s.id))
            .where(o.delivered_at.is_(None))
            .group_by(s.delivery_method)
        )
        with self._tx(write=False) as conn:
            return {str(m): int(n) for m, n in conn.execute(query)}
