"""Approval requests and grants: ``ApprovalStore`` over SQL."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from warden.core.model import (
    ApprovalRequest,
    ApprovalStatus,
)
from warden.errors import (
    ApprovalClosedError,
    NotFoundError,
)
from warden.storage.sql.codec import dump as _dump
from warden.storage.sql.codec import load_tuple as _load_tuple
from warden.storage.sql.engine import SQLBase
from warden.storage.sql.rows import before as _before
from warden.storage.sql.rows import fetch_one
from warden.storage.sql.rows import limit as _limit
from warden.storage.sql.tables import (
    approvals,
)


def _approval_row(a: ApprovalRequest) -> dict[str, Any]:
    return {
        "id": a.id,
        "status": ApprovalStatus(a.status).value,
        "digest": a.digest,
        "agent": a.agent,
        "owner": a.owner,
        "task_id": a.task_id,
        "action": a.action,
        "resource_type": a.resource_type,
        "resource_id": a.resource_id,
        "arguments": _dump(a.arguments),
        "policies": _dump(list(a.policies)),
        "chain": _dump(list(a.chain)),
        "level": int(a.level),
        "escalate_after": float(a.escalate_after),
        "escalate_at": float(a.escalate_at),
        "created_at": float(a.created_at),
        "updated_at": float(a.updated_at),
        "source": a.source,
        "on_behalf_of": a.on_behalf_of,
        "separation_of_duties": bool(a.separation_of_duties),
        "evaluation_id": a.evaluation_id,
        "coalesced": int(a.coalesced),
        "decided_by": a.decided_by,
        "decided_at": None if a.decided_at is None else float(a.decided_at),
        "decision_reason": a.decision_reason,
        "decision_auth": _dump(a.decision_auth),
        "seen": _dump(a.seen),
        "grant_expires_at": None if a.grant_expires_at is None else float(a.grant_expires_at),
        "used_at": None if a.used_at is None else float(a.used_at),
        "used_by_decision": a.used_by_decision,
    }


def _approval(m: RowMapping) -> ApprovalRequest:
    return ApprovalRequest(
        id=m["id"],
        status=ApprovalStatus(m["status"]),
        digest=m["digest"],
        agent=m["agent"],
        owner=m["owner"],
        task_id=m["task_id"],
        action=m["action"],
        resource_type=m["resource_type"],
        resource_id=m["resource_id"],
        arguments=json.loads(m["arguments"]),
        policies=_load_tuple(m["policies"]),
        chain=_load_tuple(m["chain"]),
        level=int(m["level"]),
        escalate_after=m["escalate_after"],
        escalate_at=m["escalate_at"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        source=m["source"],
        on_behalf_of=m["on_behalf_of"],
        separation_of_duties=bool(m["separation_of_duties"]),
        evaluation_id=m["evaluation_id"],
        coalesced=int(m["coalesced"]),
        decided_by=m["decided_by"],
        decided_at=m["decided_at"],
        decision_reason=m["decision_reason"],
        decision_auth=json.loads(m["decision_auth"]),
        seen=json.loads(m["seen"]),
        grant_expires_at=m["grant_expires_at"],
        used_at=m["used_at"],
        used_by_decision=m["used_by_decision"],
    )


class ApprovalSQL(SQLBase):
    """``ApprovalStore``: compare-and-set status changes, atomic spending of a grant."""

    def create_approval(self, request: ApprovalRequest) -> None:
        with self._tx(write=True, conflict=f"approval `{request.id}` already exists") as conn:
            conn.execute(sa.insert(approvals).values(**_approval_row(request)))

    def fetch_approval(self, request_id: str) -> ApprovalRequest:
        return _approval(
            fetch_one(
                self._tx,
                sa.select(approvals).where(approvals.c.id == request_id),
                f"approval request `{request_id}` not found",
            )
        )

    def update_approval(
        self, request: ApprovalRequest, *, expect_status: ApprovalStatus
    ) -> ApprovalRequest:
        values = _approval_row(request)
        del values["id"]
        with self._tx(write=True) as conn:
            result = conn.execute(
                sa.update(approvals)
                .where(
                    approvals.c.id == request.id,
                    approvals.c.status == ApprovalStatus(expect_status).value,
                )
                .values(values)
            )
            if result.rowcount == 0:
                row = (
                    conn.execute(sa.select(approvals.c.status).where(approvals.c.id == request.id))
                    .scalars()
                    .first()
                )
                if row is None:
                    raise NotFoundError(f"approval request `{request.id}` not found")
                raise ApprovalClosedError(
                    f"approval request `{request.id}` is {row}, not {expect_status.value}",
                    detail={"status": row},
                )
        return request

    def use_approval(self, request_id: str, *, used_at: float, decision_id: str) -> bool:
        with self._tx(write=True) as conn:
            result = conn.execute(
                sa.update(approvals)
                .where(
                    approvals.c.id == request_id,
                    approvals.c.status == ApprovalStatus.APPROVED.value,
                    approvals.c.used_at.is_(None),
                    approvals.c.grant_expires_at > float(used_at),
                )
                .values(used_at=float(used_at), used_by_decision=decision_id, updated_at=used_at)
            )
            return bool(result.rowcount == 1)

    def list_approvals(
        self,
        *,
        status: ApprovalStatus | None = None,
        agent: str | None = None,
        updated_since: float | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[ApprovalRequest]:
        query = sa.select(approvals).limit(_limit(limit))
        if updated_since is not None:
            query = query.where(approvals.c.updated_at >= float(updated_since)).order_by(
                approvals.c.updated_at, approvals.c.id
            )
        else:
            query = query.order_by(approvals.c.created_at.desc(), approvals.c.id.desc())
        if status is not None:
            query = query.where(approvals.c.status == ApprovalStatus(status).value)
        if agent is not None:
            query = query.where(approvals.c.agent == agent)
        with self._tx(write=False) as conn:
            if after is not None:
                query = query.where(_before(conn, approvals, after))
            return [_approval(m) for m in conn.execute(query).mappings()]
