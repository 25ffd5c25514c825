"""Accountable owners and the agent lifecycle checks that hang off them.

- Owners are humans (``core.model.Human``). Every agent has a primary owner (``Agent.owner``)
  and optional co-owners (``AgentGovernance.co_owners``); ``transfer`` replaces them, and only
  known, active humans can take an agent.
- An owner marked inactive (``deactivate``, or ``sync`` from a directory export) promotes an
  active co-owner to primary where there is one; an agent left with no active owner is
  *orphaned*, and ``tick`` suspends it after ``orphan_grace`` unless it is re-owned first.
- ``tick`` also flags active agents unused for ``unused_after`` (no task started) or past their
  declared ``end_date``, and suspends them ``flag_grace`` later unless the reason went away.

Every change is an audit record (``owner.*``, ``agent.owner_transferred``, ``agent.orphaned``,
``agent.reowned``, ``agent.flagged``, ``agent.unflagged``, ``agent.lifecycle_updated``); the
suspension itself is the kill switch's ``agent.suspended`` with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from warden.core.clock import Clock
from warden.core.governance import AgentGovernance, FlagReason
from warden.core.ids import validate_owner
from warden.core.model import Agent, AgentStatus, Human, HumanStatus
from warden.core.ports import Store
from warden.errors import ConflictError, InvalidParameterError, NotFoundError
from warden.service.agents import AgentService
from warden.service.auditing import Auditor
from warden.service.state import HotState

log = logging.getLogger("warden.governance")

MAX_OWNERS = 10
MAX_HUMAN_ID = 320


@dataclass(frozen=True)
class LifecyclePolicy:
    orphan_grace: float = 86400.0  # CP-OWN-01: suspended within 24 h of losing its last owner
    unused_after: float = 30 * 86400.0  # CP-LIFE-02: no activity for 30 days
    flag_grace: float = 7 * 86400.0  # flagged, then suspended this much later


def _human_id(value: Any, field: str = "owner") -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_HUMAN_ID:
        raise InvalidParameterError(f"`{field}` must be a non-empty string (≤{MAX_HUMAN_ID})")
    return validate_owner(value.strip(), field)


class OwnershipService:
    def __init__(
        self,
        store: Store,
        state: HotState,
        agents: AgentService,
        auditor: Auditor,
        clock: Clock,
        policy: LifecyclePolicy,
    ) -> None:
        self._store = store
        self._state = state
        self._agents = agents
        self._audit = auditor
        self._clock = clock
        self.policy = policy

    # -- owners -------------------------------------------------------------------------------
    def get_owner(self, human_id: str) -> Human:
        return self._store.fetch_human(human_id)

    def list_owners(self, **filters: Any) -> list[Human]:
        return self._store.list_humans(**filters)

    def add_owner(self, human_id: Any, display_name: str, actor: str) -> Human:
        hid = _human_id(human_id, "id")
        try:
            return self._store.fetch_human(hid)
        except NotFoundError:
            pass
        human = self._store.upsert_human(
            Human(id=hid, display_name=display_name[:200], created_at=self._clock.now())
        )
        self._audit.record("owner.created", actor, {"owner": hid})
        return human

    def deactivate(self, human_id: str, actor: str, reason: str = "") -> dict[str, Any]:
        human = self._store.fetch_human(human_id)
        if human.status is HumanStatus.INACTIVE:
            raise ConflictError(f"owner `{human_id}` is already inactive")
        self._store.update_human(replace(human, status=HumanStatus.INACTIVE))
        self._audit.record("owner.deactivated", actor, {"owner": human_id, "reason": reason})
        return self._after_owner_left(human_id, actor)

    def reactivate(self, human_id: str, actor: str, reason: str = "") -> dict[str, Any]:
        human = self._store.fetch_human(human_id)
        if human.status is HumanStatus.ACTIVE:
            raise ConflictError(f"owner `{human_id}` is already active")
        self._store.update_human(replace(human, status=HumanStatus.ACTIVE))
        self._audit.record("owner.reactivated", actor, {"owner": human_id, "reason": reason})
        reowned = []
        for name in self._store.agents_owned_by(human_id):
            gov = self._store.fetch_governance(name)
            if gov.orphaned_at is not None:
                self._store.put_governance(replace(gov, orphaned_at=None))
                self._audit.record(
                    "agent.reowned",
                    actor,
                    {"owner": human_id, "reason": "owner active again"},
                    agent=name,
                )
                reowned.append(name)
        return {"owner": human_id, "status": "active", "reowned": reowned}

    def sync(
        self, entries: Iterable[Mapping[str, Any]], actor: str, *, full: bool
    ) -> dict[str, Any]:
        """Apply a directory export: ``[{"id", "status": "active"|"inactive", "display_name"}]``.

        Unknown humans are created; status changes go through ``deactivate``/``reactivate`` (so
        their agents are re-owned or orphaned). With ``full``, active humans missing from the
        export are deactivated too: the export is the whole directory.
        """
        seen: set[str] = set()
        summary: dict[str, list[str]] = {"created": [], "deactivated": [], "reactivated": []}
        parsed = []
        for entry in entries:
            if not isinstance(entry, Mapping):
                raise InvalidParameterError("each directory entry must be an object")
            hid = _human_id(entry.get("id"), "id")
            status = entry.get("status", "active")
            if status not in ("active", "inactive"):
                raise InvalidParameterError(f"owner `{hid}`: status must be active or inactive")
            name = entry.get("display_name") or ""
            if not isinstance(name, str):
                raise InvalidParameterError(f"owner `{hid}`: display_name must be a string")
            parsed.append((hid, HumanStatus(status), name))
        for hid, status, name in parsed:  # validated first: a bad export changes nothing
            seen.add(hid)
            try:
                current = self._store.fetch_human(hid)
            except NotFoundError:
                self.add_owner(hid, name, actor)
                summary["created"].append(hid)
                current = self._store.fetch_human(hid)
            if status is not current.status:
                if status is HumanStatus.INACTIVE:
                    self.deactivate(hid, actor, "directory sync")
                    summary["deactivated"].append(hid)
                else:
                    self.reactivate(hid, actor, "directory sync")
                    summary["reactivated"].append(hid)
        if full:
            for human in list(self._all_humans(HumanStatus.ACTIVE)):
                if human.id not in seen:
                    self.deactivate(human.id, actor, "missing from the directory export")
                    summary["deactivated"].append(human.id)
        return {**summary, "entries": len(parsed)}

    def _all_humans(self, status: HumanStatus) -> Iterator[Human]:
        after: str | None = None
        while True:
            page = self._store.list_humans(status=status, after=after, limit=500)
            yield from page
            if len(page) < 500:
                return
            after = page[-1].id

    def _active(self, human_id: str) -> bool:
        try:
            return self._store.fetch_human(human_id).status is HumanStatus.ACTIVE
        except NotFoundError:
            return False

    def _after_owner_left(self, human_id: str, actor: str) -> dict[str, Any]:
        promoted, orphaned = [], []
        for name in self._store.agents_owned_by(human_id):
            agent = self._store.fetch_agent(name)
            if agent.status is AgentStatus.DECOMMISSIONED:
                continue
            gov = self._store.fetch_governance(name)
            owners = [agent.owner, *gov.co_owners]
            active = [o for o in owners if self._active(o)]
            if not active:
                if gov.orphaned_at is None:
                    self._orphan(agent, gov, actor)
                    orphaned.append(name)
                continue
            if agent.owner == human_id:
                new_primary = active[0]
                rest = tuple(o for o in gov.co_owners if o != new_primary)
                self._set_owners(agent, gov, new_primary, rest, actor, "primary owner left")
                promoted.append(name)
        return {"owner": human_id, "status": "inactive", "promoted": promoted, "orphaned": orphaned}

    def _orphan(self, agent: Agent, gov: AgentGovernance, actor: str) -> None:
        now = self._clock.now()
        self._store.put_governance(replace(gov, orphaned_at=now))
        self._audit.record(
            "agent.orphaned",
            actor,
            {
                "owners": [agent.owner, *gov.co_owners],
                "suspend_at": now + self.policy.orphan_grace,
                "reason": "no active owner",
            },
            agent=agent.name,
        )

    # -- agents -------------------------------------------------------------------------------
    def transfer(self, name: str, owners: Any, actor: str, reason: str = "") -> dict[str, Any]:
        if isinstance(owners, str):
            owners = [owners]
        if not isinstance(owners, list) or not owners or len(owners) > MAX_OWNERS:
            raise InvalidParameterError(f"`owners` must list 1 to {MAX_OWNERS} humans")
        wanted = list(dict.fromkeys(_human_id(o, "owners") for o in owners))
        for hid in wanted:
            try:
                human = self._store.fetch_human(hid)
            except NotFoundError:
                raise NotFoundError(
                    f"owner `{hid}` does not exist: add them first (warden owners add)",
                    detail={"owner": hid},
                ) from None
            if human.status is not HumanStatus.ACTIVE:
                raise ConflictError(f"owner `{hid}` is inactive", detail={"owner": hid})
        agent = self._agents.get(name)
        if agent.status is AgentStatus.DECOMMISSIONED:
            raise ConflictError(f"agent `{name}` is decommissioned")
        gov = self._store.fetch_governance(agent.name)
        self._set_owners(agent, gov, wanted[0], tuple(wanted[1:]), actor, reason or "transfer")
        return self.describe(agent.name)

    def _set_owners(
        self,
        agent: Agent,
        gov: AgentGovernance,
        primary: str,
        co_owners: tuple[str, ...],
        actor: str,
        reason: str,
    ) -> None:
        before = [agent.owner, *gov.co_owners]
        updated = replace(agent, owner=primary, updated_at=self._clock.now())
        self._store.update_agent(updated)
        self._state.put_agent(updated)
        was_orphaned = gov.orphaned_at is not None
        self._store.put_governance(replace(gov, co_owners=co_owners, orphaned_at=None))
        self._audit.record(
            "agent.owner_transferred",
            actor,
            {"from": before, "to": [primary, *co_owners], "reason": reason},
            agent=agent.name,
        )
        if was_orphaned:
            self._audit.record(
                "agent.reowned", actor, {"owner": primary, "reason": reason}, agent=agent.name
            )

    def set_end_date(self, name: str, end_date: Any, actor: str) -> dict[str, Any]:
        if end_date is not None and (
            isinstance(end_date, bool) or not isinstance(end_date, int | float) or end_date <= 0
        ):
            raise InvalidParameterError("`end_date` must be epoch seconds or null")
        agent = self._agents.get(name)
        gov = self._store.fetch_governance(agent.name)
        changed = replace(gov, end_date=None if end_date is None else float(end_date))
        self._store.put_governance(changed)
        self._audit.record(
            "agent.lifecycle_updated",
            actor,
            {"end_date": changed.end_date, "previous_end_date": gov.end_date},
            agent=agent.name,
        )
        return self.describe(agent.name)

    def describe(self, name: str) -> dict[str, Any]:
        agent = self._agents.get(name)
        gov = self._store.fetch_governance(agent.name)
        owners = []
        for hid in [agent.owner, *gov.co_owners]:
            try:
                status = self._store.fetch_human(hid).status.value
            except NotFoundError:
                status = "unknown"
            owners.append({"id": hid, "status": status, "primary": hid == agent.owner})
        return {
            "agent": agent.name,
            "status": agent.status.value,
            "owners": owners,
            "orphaned_at": gov.orphaned_at,
            "end_date": gov.end_date,
            "flagged_at": gov.flagged_at,
            "flag_reason": gov.flag_reason.value if gov.flag_reason else None,
            "last_used_at": self._store.last_activity().get(agent.name),
            "last_certified_at": gov.last_certified_at,
        }

    # -- the background check -------------------------------------------------------------
    def tick(self) -> dict[str, list[str]]:
        """Orphan grace, unused and end-date flags, and the suspensions they lead to."""
        now = self._clock.now()
        done: dict[str, list[str]] = {
            "orphaned": [],
            "flagged": [],
            "unflagged": [],
            "suspended": [],
        }
        last_used = self._store.last_activity()
        for agent in list(self._state.agents_by_name.values()):
            if agent.status is not AgentStatus.ACTIVE:
                continue
            try:
                self._check(agent, now, last_used, done)
            except Exception:  # one agent's trouble must not stop the others
                log.exception("governance check of agent %s failed", agent.name)
        return done

    def _check(
        self, agent: Agent, now: float, last_used: Mapping[str, float], done: dict[str, list[str]]
    ) -> None:
        gov = self._store.fetch_governance(agent.name)
        owners = [agent.owner, *gov.co_owners]
        if gov.orphaned_at is None and not any(self._active(o) for o in owners):
            self._orphan(agent, gov, "warden")  # e.g. owner set to an inactive human directly
            done["orphaned"].append(agent.name)
            return
        if gov.orphaned_at is not None and now >= gov.orphaned_at + self.policy.orphan_grace:
            self._suspend(agent, gov, "orphaned: no active owner within the grace period", done)
            return
        used = max(last_used.get(agent.name, agent.created_at), agent.created_at)
        reason: FlagReason | None = None
        if gov.end_date is not None and now >= gov.end_date:
            reason = FlagReason.END_DATE
        elif now - used >= self.policy.unused_after:
            reason = FlagReason.UNUSED
        if reason is None:
            if gov.flagged_at is not None:
                self._store.put_governance(replace(gov, flagged_at=None, flag_reason=None))
                self._audit.record(
                    "agent.unflagged",
                    "warden",
                    {"was": gov.flag_reason.value if gov.flag_reason else None},
                    agent=agent.name,
                )
                done["unflagged"].append(agent.name)
            return
        if gov.flagged_at is None or gov.flag_reason is not reason:
            self._store.put_governance(replace(gov, flagged_at=now, flag_reason=reason))
            self._audit.record(
                "agent.flagged",
                "warden",
                {
                    "reason": reason.value,
                    "last_used_at": last_used.get(agent.name),
                    "end_date": gov.end_date,
                    "suspend_at": now + self.policy.flag_grace,
                    "owners": owners,
                },
                agent=agent.name,
            )
            done["flagged"].append(agent.name)
            return
        if now >= gov.flagged_at + self.policy.flag_grace:
            why = "past its end date" if reason is FlagReason.END_DATE else "unused"
            self._suspend(
                agent, gov, f"{why}: flagged and not resolved within the grace period", done
            )

    def _suspend(
        self, agent: Agent, gov: AgentGovernance, reason: str, done: dict[str, list[str]]
    ) -> None:
        self._agents.suspend(agent.name, "warden", reason)
        self._store.put_governance(replace(gov, flagged_at=None, flag_reason=None))
        done["suspended"].append(agent.name)
