"""Agent inventory: register, update, suspend (kill switch), reactivate, decommission."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from warden.attestation.spiffe_id import validate_spiffe_id
from warden.core.clock import Clock
from warden.core.ids import validate_agent_name, validate_group, validate_owner
from warden.core.model import Agent, AgentStatus, Human, HumanStatus, RiskTier, TaskStatus
from warden.core.ports import Store
from warden.core.scope import parse_scope
from warden.errors import ConflictError, InvalidParameterError
from warden.service.auditing import Auditor
from warden.service.state import HotState
from warden.service.tasks import Cascade

MAX_TEXT = 2000


def _text(value: Any, field: str, *, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise InvalidParameterError(
            f"`{field}` must be a non-empty string", detail={"field": field}
        )
    if len(value) > MAX_TEXT:
        raise InvalidParameterError(f"`{field}` is longer than {MAX_TEXT} characters")
    return value.strip()


def _tier(value: Any) -> RiskTier:
    try:
        return RiskTier(value)
    except ValueError:
        raise InvalidParameterError(
            f"invalid risk tier `{value}`: use low, medium, high or critical",
            detail={"field": "risk_tier"},
        ) from None


def _list(value: Any, field: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return value.split()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidParameterError(f"`{field}` must be a list of strings", detail={"field": field})
    return value


class AgentService:
    def __init__(
        self,
        store: Store,
        state: HotState,
        auditor: Auditor,
        clock: Clock,
        *,
        default_trust_domain: str,
        end_tasks: Callable[[str, TaskStatus, str, str], Cascade],
    ) -> None:
        self._store = store
        self._state = state
        self._audit = auditor
        self._clock = clock
        self._default_td = default_trust_domain
        self._end_tasks = end_tasks  # (agent name, status, reason, actor) -> what ended

    def register(self, body: dict[str, Any], actor: str) -> Agent:
        name = validate_agent_name(body.get("name"))  # type: ignore[arg-type]  # validated inside
        spiffe_id = body.get("spiffe_id") or f"spiffe://{self._default_td}/agent/{name}"
        validate_spiffe_id(spiffe_id)
        owner = validate_owner(body.get("owner"))
        now = self._clock.now()
        agent = Agent(
            name=name,
            spiffe_id=spiffe_id,
            owner=owner,
            purpose=_text(body.get("purpose"), "purpose"),
            risk_tier=_tier(body.get("risk_tier", "medium")),
            entitlements=parse_scope(_list(body.get("entitlements"), "entitlements")),
            groups=tuple(sorted({validate_group(g) for g in _list(body.get("groups"), "groups")})),
            status=AgentStatus.ACTIVE,
            created_at=now,
            updated_at=now,
        )
        self._active_owner(owner, now)
        self._store.create_agent(agent)
        self._state.put_agent(agent)
        self._audit.record("agent.registered", actor, _describe(agent), agent=name)
        return agent

    def _active_owner(self, owner: str, now: float) -> None:
        """An agent's owner is an active human: a new one is recorded as such; one that exists
        but is inactive (left, or deactivated) cannot take an agent (issue 10)."""
        human = self._store.upsert_human(Human(id=owner, status=HumanStatus.ACTIVE, created_at=now))
        if human.status is not HumanStatus.ACTIVE:
            raise ConflictError(
                f"owner `{owner}` is not an active human: reactivate them or choose another owner",
                detail={"owner": owner},
            )

    def get(self, name: str) -> Agent:
        return self._store.fetch_agent(validate_agent_name(name))

    def list(self, **filters: Any) -> list[Agent]:
        return self._store.list_agents(**filters)

    def update(self, name: str, body: dict[str, Any], actor: str) -> Agent:
        agent = self.get(name)
        if agent.status is AgentStatus.DECOMMISSIONED:
            raise ConflictError(f"agent `{name}` is decommissioned")
        changes: dict[str, Any] = {}
        if "owner" in body:
            changes["owner"] = validate_owner(body["owner"])
            self._active_owner(changes["owner"], self._clock.now())
        if "purpose" in body:
            changes["purpose"] = _text(body["purpose"], "purpose")
        if "risk_tier" in body:
            changes["risk_tier"] = _tier(body["risk_tier"])
        if "entitlements" in body:
            changes["entitlements"] = parse_scope(_list(body["entitlements"], "entitlements"))
        if "groups" in body:
            changes["groups"] = tuple(
                sorted({validate_group(g) for g in _list(body["groups"], "groups")})
            )
        unknown = set(body) - {"owner", "purpose", "risk_tier", "entitlements", "groups"}
        if unknown:
            raise InvalidParameterError(f"cannot update `{sorted(unknown)[0]}`")
        updated = replace(agent, **changes, updated_at=self._clock.now())
        self._store.update_agent(updated)
        self._state.put_agent(updated)
        self._audit.record(
            "agent.updated",
            actor,
            {"changes": {k: _jsonable(v) for k, v in changes.items()}},
            agent=name,
        )
        return updated

    def suspend(self, name: str, actor: str, reason: str = "") -> tuple[Agent, Cascade]:
        """Kill switch: mark suspended first (new requests fail at once), then end its tasks."""
        agent = self._set_status(name, AgentStatus.SUSPENDED, actor, reason, {AgentStatus.ACTIVE})
        ended = self._end_tasks(
            name, TaskStatus.REVOKED, f"agent suspended: {reason}".strip(": "), actor
        )
        return agent, ended

    def reactivate(self, name: str, actor: str, reason: str = "") -> Agent:
        return self._set_status(name, AgentStatus.ACTIVE, actor, reason, {AgentStatus.SUSPENDED})

    def decommission(self, name: str, actor: str, reason: str = "") -> tuple[Agent, Cascade]:
        allowed = {AgentStatus.ACTIVE, AgentStatus.SUSPENDED}
        agent = self._set_status(name, AgentStatus.DECOMMISSIONED, actor, reason, allowed)
        ended = self._end_tasks(name, TaskStatus.REVOKED, "agent decommissioned", actor)
        return agent, ended

    def _set_status(
        self,
        name: str,
        status: AgentStatus,
        actor: str,
        reason: str,
        allowed_from: Iterable[AgentStatus],
    ) -> Agent:
        agent = self.get(name)
        if agent.status not in set(allowed_from):
            raise ConflictError(
                f"agent `{name}` is {agent.status.value}: cannot make it {status.value}"
            )
        updated = replace(agent, status=status, updated_at=self._clock.now())
        self._store.update_agent(updated)
        self._state.put_agent(updated)
        self._audit.record(
            f"agent.{_VERB[status]}",
            actor,
            {"from": agent.status.value, "to": status.value, "reason": reason},
            agent=name,
        )
        return updated


_VERB = {
    AgentStatus.ACTIVE: "reactivated",
    AgentStatus.SUSPENDED: "suspended",
    AgentStatus.DECOMMISSIONED: "decommissioned",
}


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, RiskTier):
        return value.value
    return value


def _describe(agent: Agent) -> dict[str, Any]:
    return {
        "spiffe_id": agent.spiffe_id,
        "owner": agent.owner,
        "purpose": agent.purpose,
        "risk_tier": agent.risk_tier.value,
        "entitlements": list(agent.entitlements),
        "groups": list(agent.groups),
    }


def agent_view(agent: Agent) -> dict[str, Any]:
    return {
        "name": agent.name,
        "status": agent.status.value,
        "created_at": agent.created_at,
        "updated_at": agent.updated_at,
        **_describe(agent),
    }
