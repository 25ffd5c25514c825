"""``GovernanceStore`` over SQLAlchemy: owners, lifecycle state, certification, checkpoints,
export cursors and attribution search. Mixed into ``SQLStore`` (it uses its transactions).

Attribution filters on fields inside an audit record's JSON ``data`` (action, decision, policy
ids among the reasons) run in the database: ``json_extract``/``json_each`` on SQLite, ``jsonb``
operators on PostgreSQL. The JSON text itself is never rewritten (the chain hashes it).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, RowMapping

from warden.core.governance import (
    AgentGovernance,
    AuditQuery,
    Campaign,
    CampaignStatus,
    Checkpoint,
    FlagReason,
    Review,
    ReviewStatus,
    TimeoutAction,
)
from warden.core.model import AuditRecord, Human, HumanStatus, Task
from warden.errors import ConflictError, NotFoundError
from warden.storage.sql.rows import fetch_one
from warden.storage.sql.tables import (
    agent_co_owners,
    agent_governance,
    agents,
    audit_checkpoints,
    audit_events,
    cert_campaigns,
    cert_reviews,
    export_cursors,
    humans,
    tasks,
)

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql as pg_dialect
    from sqlalchemy.dialects import sqlite as sqlite_dialect


def _dump(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _campaign(m: RowMapping) -> Campaign:
    return Campaign(
        id=m["id"],
        started_at=m["started_at"],
        started_by=m["started_by"],
        period_start=m["period_start"],
        deadline=m["deadline"],
        on_timeout=TimeoutAction(m["on_timeout"]),
        every=m["every"],
        status=CampaignStatus(m["status"]),
        closed_at=m["closed_at"],
    )


def _review_row(r: Review) -> dict[str, Any]:
    return {
        "id": r.id,
        "campaign_id": r.campaign_id,
        "agent_name": r.agent_name,
        "owner": r.owner,
        "entitlements": _dump(list(r.entitlements)),
        "used": _dump(list(r.used)),
        "deadline": float(r.deadline),
        "status": ReviewStatus(r.status).value,
        "decided_at": r.decided_at,
        "decided_by": r.decided_by,
        "result": None if r.result is None else _dump(list(r.result)),
    }


def _review(m: RowMapping) -> Review:
    return Review(
        id=m["id"],
        campaign_id=m["campaign_id"],
        agent_name=m["agent_name"],
        owner=m["owner"],
        entitlements=tuple(json.loads(m["entitlements"])),
        used=tuple(json.loads(m["used"])),
        deadline=m["deadline"],
        status=ReviewStatus(m["status"]),
        decided_at=m["decided_at"],
        decided_by=m["decided_by"],
        result=None if m["result"] is None else tuple(json.loads(m["result"])),
    )


def _checkpoint(m: RowMapping) -> Checkpoint:
    return Checkpoint(
        seq=int(m["seq"]), head_hash=m["head_hash"], ts=m["ts"], kid=m["kid"], jws=m["jws"]
    )


class GovernanceSQL:
    """The governance half of ``SQLStore``."""

    if TYPE_CHECKING:

        def _tx(
            self, *, write: bool, conflict: str | None = None
        ) -> AbstractContextManager[Connection]: ...

        def _insert(
            self, conn: Connection, table: sa.Table
        ) -> pg_dialect.Insert | sqlite_dialect.Insert: ...

        def _audit_rows(self, conn: Connection, query: sa.Select[Any]) -> list[AuditRecord]: ...

    # -- owners and lifecycle ------------------------------------------------------------------
    def list_humans(
        self, *, status: HumanStatus | None = None, after: str | None = None, limit: int = 100
    ) -> list[Human]:
        query = sa.select(humans).order_by(humans.c.id).limit(max(0, int(limit)))
        if status is not None:
            query = query.where(humans.c.status == HumanStatus(status).value)
        if after is not None:
            query = query.where(humans.c.id > after)
        with self._tx(write=False) as conn:
            return [
                Human(
                    id=m["id"],
                    status=HumanStatus(m["status"]),
                    display_name=m["display_name"],
                    created_at=m["created_at"],
                )
                for m in conn.execute(query).mappings()
            ]

    def fetch_governance(self, agent_name: str) -> AgentGovernance:
        with self._tx(write=False) as conn:
            row = (
                conn.execute(
                    sa.select(agent_governance).where(agent_governance.c.agent_name == agent_name)
                )
                .mappings()
                .first()
            )
            co = conn.execute(
                sa.select(agent_co_owners.c.human_id)
                .where(agent_co_owners.c.agent_name == agent_name)
                .order_by(agent_co_owners.c.position)
            ).scalars()
            co_owners = tuple(co)
        if row is None:
            return AgentGovernance(agent_name=agent_name, co_owners=co_owners)
        return AgentGovernance(
            agent_name=agent_name,
            co_owners=co_owners,
            end_date=row["end_date"],
            orphaned_at=row["orphaned_at"],
            flagged_at=row["flagged_at"],
            flag_reason=FlagReason(row["flag_reason"]) if row["flag_reason"] else None,
            last_certified_at=row["last_certified_at"],
        )

    def put_governance(self, governance: AgentGovernance) -> None:
        g = governance
        values = {
            "agent_name": g.agent_name,
            "end_date": g.end_date,
            "orphaned_at": g.orphaned_at,
            "flagged_at": g.flagged_at,
            "flag_reason": None if g.flag_reason is None else FlagReason(g.flag_reason).value,
            "last_certified_at": g.last_certified_at,
        }
        with self._tx(write=True) as conn:
            insert = self._insert(conn, agent_governance).values(**values)
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=["agent_name"],
                    set_={k: v for k, v in values.items() if k != "agent_name"},
                )
            )
            conn.execute(
                sa.delete(agent_co_owners).where(agent_co_owners.c.agent_name == g.agent_name)
            )
            if g.co_owners:
                conn.execute(
                    sa.insert(agent_co_owners),
                    [
                        {"agent_name": g.agent_name, "human_id": h, "position": i}
                        for i, h in enumerate(dict.fromkeys(g.co_owners))
                    ],
                )

    def agents_owned_by(self, human_id: str) -> list[str]:
        primary = sa.select(agents.c.name).where(agents.c.owner == human_id)
        co = sa.select(agent_co_owners.c.agent_name).where(agent_co_owners.c.human_id == human_id)
        with self._tx(write=False) as conn:
            names = set(conn.execute(primary).scalars()) | set(conn.execute(co).scalars())
        return sorted(names)

    def last_activity(self) -> dict[str, float]:
        query = sa.select(tasks.c.agent_name, sa.func.max(tasks.c.created_at)).group_by(
            tasks.c.agent_name
        )
        with self._tx(write=False) as conn:
            return {str(name): float(ts) for name, ts in conn.execute(query)}

    # -- certification ---------------------------------------------------------------------
    def create_campaign(self, campaign: Campaign, reviews: Sequence[Review]) -> None:
        c = campaign
        conflict = "a certification campaign is already open: close it first"
        with self._tx(write=True, conflict=conflict) as conn:
            open_id = conn.execute(
                sa.select(cert_campaigns.c.id).where(cert_campaigns.c.open_slot == 1)
            ).scalar_one_or_none()
            if open_id is not None:
                raise ConflictError(f"certification campaign `{open_id}` is already open")
            conn.execute(
                sa.insert(cert_campaigns).values(
                    id=c.id,
                    started_at=float(c.started_at),
                    started_by=c.started_by,
                    period_start=float(c.period_start),
                    deadline=float(c.deadline),
                    on_timeout=TimeoutAction(c.on_timeout).value,
                    every=c.every,
                    status=CampaignStatus.OPEN.value,
                    closed_at=None,
                    open_slot=1,
                )
            )
            if reviews:
                conn.execute(sa.insert(cert_reviews), [_review_row(r) for r in reviews])

    def fetch_campaign(self, campaign_id: str) -> Campaign:
        query = sa.select(cert_campaigns).where(cert_campaigns.c.id == campaign_id)
        missing = f"certification campaign `{campaign_id}` not found"
        return _campaign(fetch_one(self._tx, query, missing))

    def list_campaigns(self, *, limit: int = 100) -> list[Campaign]:
        query = (
            sa.select(cert_campaigns)
            .order_by(cert_campaigns.c.started_at.desc(), cert_campaigns.c.id.desc())
            .limit(max(0, int(limit)))
        )
        with self._tx(write=False) as conn:
            return [_campaign(m) for m in conn.execute(query).mappings()]

    def close_campaign(self, campaign_id: str, *, closed_at: float) -> Campaign:
        with self._tx(write=True) as conn:
            result = conn.execute(
                sa.update(cert_campaigns)
                .where(
                    cert_campaigns.c.id == campaign_id,
                    cert_campaigns.c.status == CampaignStatus.OPEN.value,
                )
                .values(
                    status=CampaignStatus.CLOSED.value, closed_at=float(closed_at), open_slot=None
                )
            )
            row = (
                conn.execute(sa.select(cert_campaigns).where(cert_campaigns.c.id == campaign_id))
                .mappings()
                .first()
            )
            if row is None:
                raise NotFoundError(f"certification campaign `{campaign_id}` not found")
            if result.rowcount == 0:
                raise ConflictError(f"certification campaign `{campaign_id}` is already closed")
            return _campaign(row)

    def fetch_review(self, review_id: str) -> Review:
        query = sa.select(cert_reviews).where(cert_reviews.c.id == review_id)
        return _review(fetch_one(self._tx, query, f"review `{review_id}` not found"))

    def list_reviews(
        self,
        *,
        campaign_id: str | None = None,
        status: ReviewStatus | None = None,
        agent: str | None = None,
        due_before: float | None = None,
    ) -> list[Review]:
        c = cert_reviews.c
        query = sa.select(cert_reviews).order_by(c.deadline, c.agent_name, c.id)
        if campaign_id is not None:
            query = query.where(c.campaign_id == campaign_id)
        if status is not None:
            query = query.where(c.status == ReviewStatus(status).value)
        if agent is not None:
            query = query.where(c.agent_name == agent)
        if due_before is not None:
            query = query.where(c.deadline <= float(due_before))
        with self._tx(write=False) as conn:
            return [_review(m) for m in conn.execute(query).mappings()]

    def decide_review(self, review: Review) -> None:
        values = _review_row(review)
        del values["id"]
        with self._tx(write=True) as conn:
            result = conn.execute(
                sa.update(cert_reviews)
                .where(
                    cert_reviews.c.id == review.id,
                    cert_reviews.c.status == ReviewStatus.PENDING.value,
                )
                .values(values)
            )
            if result.rowcount == 0:
                status = conn.execute(
                    sa.select(cert_reviews.c.status).where(cert_reviews.c.id == review.id)
                ).scalar_one_or_none()
                if status is None:
                    raise NotFoundError(f"review `{review.id}` not found")
                raise ConflictError(f"review `{review.id}` was already decided ({status})")

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
            .limit(max(0, int(limit)))
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
                stmt = stmt.where(c.task_id.in_(sa.select(_subtree_cte(q.task_id).c.id)))
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
            return self._audit_rows(conn, stmt.limit(max(0, int(limit))))

    def task_subtree(self, task_id: str) -> list[Task]:
        from warden.storage.sql.store import _task  # the row mapping lives with the tasks code

        tree = _subtree_cte(task_id)
        query = (
            sa.select(tasks)
            .where(tasks.c.id.in_(sa.select(tree.c.id)))
            .order_by(tasks.c.created_at, tasks.c.id)
        )
        with self._tx(write=False) as conn:
            found = [_task(m) for m in conn.execute(query).mappings()]
        if not found:
            raise NotFoundError(f"task `{task_id}` not found")
        return found


def _subtree_cte(task_id: str) -> sa.CTE:
    """Recursive CTE of a task id and every descendant's id (delegation subtree)."""
    root = sa.select(tasks.c.id).where(tasks.c.id == task_id).cte("subtree", recursive=True)
    child = sa.select(tasks.c.id).join(root, tasks.c.parent_id == root.c.id)
    return root.union_all(child)
