"""Hot state each replica keeps in memory for the decision path.

The database is the system of record; this is a cache of what the decision path must check on
every request without I/O: agent status and attributes, active tasks, revoked credential ids.
Every change made through this process updates it at once. (Propagation between replicas is a
separate concern layered on top: it calls the same ``put_*``/``end_task`` methods.)
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from warden.core.model import Agent, AgentStatus, Task, TaskStatus
from warden.core.ports import Store


@dataclass(frozen=True, slots=True)
class LiveTask:
    """What the decision path needs of an active task."""

    id: str
    agent_name: str
    spiffe_id: str
    purpose: str
    category: str
    scope: frozenset[str]
    created_at: float
    expires_at: float
    parent_id: str | None
    on_behalf_of: str | None
    attestation: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, task: Task) -> LiveTask:
        return cls(
            id=task.id,
            agent_name=task.agent_name,
            spiffe_id=task.spiffe_id,
            purpose=task.purpose,
            category=task.category,
            scope=frozenset(task.granted_scope),
            created_at=task.created_at,
            expires_at=task.expires_at,
            parent_id=task.parent_id,
            on_behalf_of=task.on_behalf_of,
            attestation=policy_attestation(task.attestation),
        )


def policy_attestation(record: dict[str, Any]) -> dict[str, Any]:
    """What Cedar sees of a task's attestation under ``context.warden.attestation``.

    ``method`` (``jwt_svid``, ``x509_svid``, ``oidc``, ``k8s``, ``unix``, ``join_token``),
    ``entry`` (the matched entry's id), ``selectors`` (a set of strings), and when known
    ``trust_domain``, ``spiffe_id`` and ``via`` (``workload_api``). Absent values are left out
    (Cedar has no null), so policies test them with ``has``.
    """
    out: dict[str, Any] = {
        "method": str(record.get("method", "")),
        "selectors": sorted(str(s) for s in record.get("selectors", []) or []),
    }
    entry = record.get("entry")
    if isinstance(entry, dict) and entry.get("id"):
        out["entry"] = str(entry["id"])
    for key in ("trust_domain", "spiffe_id", "via"):
        value = record.get(key)
        if isinstance(value, str) and value:
            out[key] = value
    return out


class HotState:
    def __init__(self) -> None:
        self._lock = threading.Lock()  # writers only; readers take plain dict lookups
        self.agents_by_spiffe: dict[str, Agent] = {}
        self.agents_by_name: dict[str, Agent] = {}
        self.tasks: dict[str, LiveTask] = {}
        self.revoked: dict[str, float] = {}  # jti -> credential expiry

    def load(self, store: Store, *, now: float) -> None:
        agents: list[Agent] = []
        after: str | None = None
        while True:
            page = store.list_agents(after=after, limit=1000)
            agents.extend(page)
            if len(page) < 1000:
                break
            after = page[-1].name
        with self._lock:
            for agent in agents:
                self._put_agent(agent)
            for task in store.list_active_tasks():
                self.tasks[task.id] = LiveTask.of(task)
            for cred in store.list_revoked_credentials(not_expired_at=now):
                self.revoked[cred.jti] = cred.expires_at

    # -- agents -------------------------------------------------------------------------------
    def put_agent(self, agent: Agent) -> None:
        with self._lock:
            self._put_agent(agent)

    def _put_agent(self, agent: Agent) -> None:
        old = self.agents_by_name.get(agent.name)
        if old is not None and old.spiffe_id != agent.spiffe_id:
            self.agents_by_spiffe.pop(old.spiffe_id, None)
        self.agents_by_name[agent.name] = agent
        self.agents_by_spiffe[agent.spiffe_id] = agent

    def agent_is_active(self, spiffe_id: str) -> Agent | None:
        agent = self.agents_by_spiffe.get(spiffe_id)
        if agent is None or agent.status is not AgentStatus.ACTIVE:
            return None
        return agent

    # -- tasks and credentials --------------------------------------------------------------
    def put_task(self, task: Task) -> None:
        if task.status is TaskStatus.ACTIVE:
            with self._lock:
                self.tasks[task.id] = LiveTask.of(task)

    def end_task(self, task_id: str, revoked: dict[str, float]) -> None:
        with self._lock:
            self.tasks.pop(task_id, None)
            self.revoked.update(revoked)

    def revoke(self, jti: str, expires_at: float) -> None:
        with self._lock:
            self.revoked[jti] = expires_at

    def expired_tasks(self, now: float) -> list[str]:
        return [t.id for t in list(self.tasks.values()) if t.expires_at <= now]

    def prune_revoked(self, now: float) -> int:
        """Forget revoked ids whose credentials have expired anyway (they fail on exp)."""
        with self._lock:
            gone = [jti for jti, exp in self.revoked.items() if exp + 60 < now]
            for jti in gone:
                del self.revoked[jti]
        return len(gone)
