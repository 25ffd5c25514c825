"""Humans (owners) and agents: ``HumanStore`` and ``AgentStore`` over SQL."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from warden.core.model import (
    Agent,
    AgentStatus,
    Human,
    HumanStatus,
    RiskTier,
)
from warden.errors import (
    ConflictError,
    NotFoundError,
)
from warden.storage.sql.codec import dump as _dump
from warden.storage.sql.codec import load_tuple as _load_tuple
from warden.storage.sql.engine import SQLBase
from warden.storage.sql.rows import fetch_one
from warden.storage.sql.rows import limit as _limit
from warden.storage.sql.tables import (
    agents,
    humans,
)


def _human_row(h: Human) -> dict[str, Any]:
    return {
        "id": h.id,
        "status": h.status.value,
        "display_name": h.display_name,
        "created_at": float(h.created_at),
    }


def _human(m: RowMapping) -> Human:
    return Human(
        id=m["id"],
        status=HumanStatus(m["status"]),
        display_name=m["display_name"],
        created_at=m["created_at"],
    )


def _agent_row(a: Agent) -> dict[str, Any]:
    return {
        "name": a.name,
        "spiffe_id": a.spiffe_id,
        "owner": a.owner,
        "purpose": a.purpose,
        "risk_tier": a.risk_tier.value,
        "entitlements": _dump(list(a.entitlements)),
        "status": a.status.value,
        "groups": _dump(list(a.groups)),
        "created_at": float(a.created_at),
        "updated_at": float(a.updated_at),
    }


def _agent(m: RowMapping) -> Agent:
    return Agent(
        name=m["name"],
        spiffe_id=m["spiffe_id"],
        owner=m["owner"],
        purpose=m["purpose"],
        risk_tier=RiskTier(m["risk_tier"]),
        entitlements=_load_tuple(m["entitlements"]),
        status=AgentStatus(m["status"]),
        groups=_load_tuple(m["groups"]),
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )


class AgentSQL(SQLBase):
    """``HumanStore`` and ``AgentStore``."""

    # -- humans ----------------------------------------------------------------------------

    def upsert_human(self, human: Human) -> Human:
        with self._tx(write=True) as conn:
            insert = self._insert(conn, humans).values(**_human_row(human))
            conn.execute(insert.on_conflict_do_nothing(index_elements=["id"]))
            row = conn.execute(sa.select(humans).where(humans.c.id == human.id)).mappings().one()
            return _human(row)

    def fetch_human(self, human_id: str) -> Human:
        return _human(
            fetch_one(
                self._tx,
                sa.select(humans).where(humans.c.id == human_id),
                f"human `{human_id}` not found",
            )
        )

    def update_human(self, human: Human) -> None:
        values = _human_row(human)
        del values["id"]
        with self._tx(write=True) as conn:
            result = conn.execute(sa.update(humans).where(humans.c.id == human.id).values(values))
            if result.rowcount == 0:
                raise NotFoundError(f"human `{human.id}` not found")

    def list_humans(
        self, *, status: HumanStatus | None = None, after: str | None = None, limit: int = 100
    ) -> list[Human]:
        query = sa.select(humans).order_by(humans.c.id).limit(_limit(limit))
        if status is not None:
            query = query.where(humans.c.status == HumanStatus(status).value)
        if after is not None:
            query = query.where(humans.c.id > after)
        with self._tx(write=False) as conn:
            return [_human(m) for m in conn.execute(query).mappings()]

    # -- agents ----------------------------------------------------------------------------

    def create_agent(self, agent: Agent) -> None:
        conflict = f"agent `{agent.name}` or SPIFFE ID `{agent.spiffe_id}` already exists"
        with self._tx(write=True, conflict=conflict) as conn:
            taken = (
                conn.execute(
                    sa.select(agents.c.name, agents.c.spiffe_id)
                    .where((agents.c.name == agent.name) | (agents.c.spiffe_id == agent.spiffe_id))
                    .limit(1)
                )
                .mappings()
                .first()
            )
            if taken is not None:
                if taken["name"] == agent.name:
                    raise ConflictError(f"agent `{agent.name}` already exists")
                raise ConflictError(
                    f"SPIFFE ID `{agent.spiffe_id}` is already registered to agent "
                    f"`{taken['name']}`"
                )
            conn.execute(sa.insert(agents).values(**_agent_row(agent)))

    def fetch_agent(self, name: str) -> Agent:
        return _agent(
            fetch_one(
                self._tx,
                sa.select(agents).where(agents.c.name == name),
                f"agent `{name}` not found",
            )
        )

    def fetch_agent_by_spiffe_id(self, spiffe_id: str) -> Agent:
        return _agent(
            fetch_one(
                self._tx,
                sa.select(agents).where(agents.c.spiffe_id == spiffe_id),
                f"no agent has SPIFFE ID `{spiffe_id}`",
            )
        )

    def list_agents(
        self,
        *,
        status: AgentStatus | None = None,
        owner: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[Agent]:
        query = sa.select(agents).order_by(agents.c.name).limit(_limit(limit))
        if status is not None:
            query = query.where(agents.c.status == AgentStatus(status).value)
        if owner is not None:
            query = query.where(agents.c.owner == owner)
        if after is not None:
            query = query.where(agents.c.name > after)
        with self._tx(write=False) as conn:
            return [_agent(m) for m in conn.execute(query).mappings()]

    def update_agent(self, agent: Agent) -> None:
        values = _agent_row(agent)
        del values["name"]
        conflict = f"SPIFFE ID `{agent.spiffe_id}` is already registered to another agent"
        with self._tx(write=True, conflict=conflict) as conn:
            result = conn.execute(
                sa.update(agents).where(agents.c.name == agent.name).values(values)
            )
            if result.rowcount == 0:
                raise NotFoundError(f"agent `{agent.name}` not found")
