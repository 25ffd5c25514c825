"""Governance over SQL: ``GovernanceStore`` (lifecycle state, co-owners, certification)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from warden.core.governance import (
    AgentGovernance,
    Campaign,
    CampaignStatus,
    FlagReason,
    Review,
    ReviewStatus,
    TimeoutAction,
)
from warden.errors import (
    ConflictError,
    NotFoundError,
)
from warden.storage.sql.codec import dump as _dump
from warden.storage.sql.engine import SQLBase
from warden.storage.sql.rows import fetch_one
from warden.storage.sql.rows import limit as _limit
from warden.storage.sql.tables import (
    agent_co_owners,
    agent_governance,
    agents,
    cert_campaigns,
    cert_reviews,
    tasks,
)


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


class GovernanceSQL(SQLBase):
    """``GovernanceStore``: lifecycle state, co-owners, certification campaigns and reviews."""

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
            .limit(_limit(limit))
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
