"""Hot state each replica keeps in memory for the decision path.

The database is the system of record; this is a cache of what the decision path must check on
every request without I/O: agent status and attributes, active tasks, revoked credential ids,
and recently ended tasks (so a credential of an ended task is refused without a database look-up).

**Replicas.** Every change made through this process updates this state at once and, through
``announce`` (replication's ``Announcer``, given at construction), tells the other replicas,
which apply it with ``announce=False``. A periodic full resync (``begin_resync`` /
``finish_resync``) rebuilds the state from the database as a safety net; changes applied while
the snapshot is being read are journaled and re-applied on top of it, so a resync never brings
back a task that ended during it.
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from warden.core.model import Agent, AgentStatus, Task, TaskStatus
from warden.core.ports import Store

# How long an ended task is remembered after its expiry (its credentials fail on exp by then).
_ENDED_GRACE = 60.0

Announce = Callable[[str, dict[str, Any]], None]


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
    chain: tuple[str, ...] = ()
    manifest: dict[str, Any] | None = None  # the verified agent manifest (policy view)

    @property
    def depth(self) -> int:
        return max(0, len(self.chain) - 1)

    @classmethod
    def of(cls, task: Task) -> LiveTask:
        # An agent's tasks repeat the same names, scopes and attestation: share one copy of each
        # (a replica holds every live task in memory; 100k of them add up).
        return cls(
            id=task.id,
            agent_name=sys.intern(task.agent_name),
            spiffe_id=sys.intern(task.spiffe_id),
            purpose=_shared(task.purpose),
            category=sys.intern(task.category),
            scope=_shared(frozenset(task.granted_scope)),
            created_at=task.created_at,
            expires_at=task.expires_at,
            parent_id=task.parent_id,
            on_behalf_of=task.on_behalf_of,
            attestation=_shared_attestation(policy_attestation(task.attestation)),
            chain=_shared(tuple(sys.intern(link) for link in task.chain)),
            manifest=task.attestation.get("manifest"),
        )


_SHARED_MAX = 50_000
_shared_values: dict[Any, Any] = {}


def _shared(value: Any) -> Any:
    """One instance per distinct hashable value (bounded; reset when full, never wrong)."""
    if len(_shared_values) >= _SHARED_MAX:
        _shared_values.clear()
    return _shared_values.setdefault(value, value)


def _shared_attestation(record: dict[str, Any]) -> dict[str, Any]:
    # read-only by contract: the decision path passes it to Cedar and never mutates it
    key = (
        "attestation",
        *((k, tuple(v) if isinstance(v, list) else v) for k, v in sorted(record.items())),
    )
    shared: dict[str, Any] = _shared_values.get(key) or _shared_values.setdefault(key, record)
    if len(_shared_values) >= _SHARED_MAX:
        _shared_values.clear()
    return shared


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


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything a full resync reads from the database."""

    agents: list[Agent]
    tasks: list[LiveTask]  # converted while streaming: 100k full Task records never coexist
    revoked: dict[str, float]


def read_snapshot(store: Store, *, now: float) -> Snapshot:
    agents: list[Agent] = []
    after: str | None = None
    while True:
        page = store.list_agents(after=after, limit=1000)
        agents.extend(page)
        if len(page) < 1000:
            break
        after = page[-1].name
    # tasks before revocations: a task that ends in between shows up as revoked credentials
    tasks = [LiveTask.of(t) for t in store.list_active_tasks() if t.status is TaskStatus.ACTIVE]
    revoked = {c.jti: c.expires_at for c in store.list_revoked_credentials(not_expired_at=now)}
    return Snapshot(agents, tasks, revoked)


class HotState:
    def __init__(self, *, announce: Announce | None = None) -> None:
        self._lock = threading.Lock()  # writers only; readers take plain dict lookups
        self.agents_by_spiffe: dict[str, Agent] = {}
        self.agents_by_name: dict[str, Agent] = {}
        self.tasks: dict[str, LiveTask] = {}
        self.revoked: dict[str, float] = {}  # jti -> credential expiry
        self.ended: dict[str, float] = {}  # task id -> task expiry, for tasks ended lately
        self.announce = announce  # replication's announcer; None: a lone process
        self._journal: list[Callable[[], None]] | None = None

    def load(self, store: Store, *, now: float) -> None:
        self.install(read_snapshot(store, now=now))

    def install(self, snapshot: Snapshot) -> None:
        """Replace everything with ``snapshot`` (then replay changes journaled since
        ``begin_resync``)."""
        agents_by_name: dict[str, Agent] = {}
        agents_by_spiffe: dict[str, Agent] = {}
        for agent in snapshot.agents:
            agents_by_name[agent.name] = agent
            agents_by_spiffe[agent.spiffe_id] = agent
        tasks = {t.id: t for t in snapshot.tasks}
        with self._lock:
            journal, self._journal = self._journal or [], None
            self.agents_by_name = agents_by_name
            self.agents_by_spiffe = agents_by_spiffe
            # a task known to have ended never comes back, whatever an older read said
            self.tasks = {k: v for k, v in tasks.items() if k not in self.ended}
            self.revoked = {**self.revoked, **snapshot.revoked}
            for replay in journal:
                replay()

    def begin_resync(self) -> None:
        with self._lock:
            self._journal = []

    def abandon_resync(self) -> None:
        with self._lock:
            self._journal = None

    def _record(self, replay: Callable[[], None]) -> None:
        """Apply a change now and, during a resync, again on top of the new snapshot."""
        replay()
        if self._journal is not None:
            self._journal.append(replay)

    def _tell(self, kind: str, data: dict[str, Any], announce: bool) -> None:
        if announce and self.announce is not None:
            self.announce(kind, data)

    # -- agents -------------------------------------------------------------------------------
    def put_agent(self, agent: Agent, *, announce: bool = True) -> None:
        with self._lock:
            self._record(lambda: self._put_agent(agent))
        self._tell("agent.changed", {"name": agent.name, "status": agent.status.value}, announce)

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
        """A task this replica learned about (started here, or read after a miss)."""
        if task.status is not TaskStatus.ACTIVE:
            self.forget_task(task.id, task.expires_at)
            return
        live = LiveTask.of(task)
        with self._lock:

            def put() -> None:
                if live.id not in self.ended:
                    self.tasks[live.id] = live

            self._record(put)

    def forget_task(self, task_id: str, expires_at: float) -> None:
        """Remember that a task is not active (a negative cache entry)."""
        with self._lock:
            self._record(lambda: self._end(task_id, expires_at, {}))

    def end_task(
        self,
        task_id: str,
        revoked: dict[str, float],
        *,
        expires_at: float | None = None,
        announce: bool = True,
    ) -> None:
        self.end_tasks({task_id: expires_at}, revoked, announce=announce)

    def end_tasks(
        self,
        tasks: dict[str, float | None],
        revoked: dict[str, float],
        *,
        announce: bool = True,
    ) -> None:
        """Tasks that ended (id -> expiry, if known) and the credentials revoked with them."""
        with self._lock:
            for task_id, expires_at in tasks.items():
                live = self.tasks.get(task_id)
                until = expires_at if expires_at is not None else (live.expires_at if live else 0)
                self._record(functools.partial(self._end, task_id, until, {}))
            self._record(lambda: self.revoked.update(revoked))
        self._tell("task.ended", {"tasks": tasks, "revoked": revoked}, announce)

    def _end(self, task_id: str, expires_at: float, revoked: dict[str, float]) -> None:
        self.tasks.pop(task_id, None)
        self.ended[task_id] = max(expires_at, self.ended.get(task_id, 0.0))
        self.revoked.update(revoked)

    def revoke(self, jti: str, expires_at: float, *, announce: bool = True) -> None:
        with self._lock:
            self._record(lambda: self.revoked.__setitem__(jti, expires_at))
        self._tell("credential.revoked", {"jti": jti, "expires_at": expires_at}, announce)

    def expired_tasks(self, now: float) -> list[str]:
        return [t.id for t in list(self.tasks.values()) if t.expires_at <= now]

    def prune_revoked(self, now: float) -> int:
        """Forget revoked ids and ended tasks whose credentials have expired anyway."""
        with self._lock:
            gone = [jti for jti, exp in self.revoked.items() if exp + _ENDED_GRACE < now]
            for jti in gone:
                del self.revoked[jti]
            for task_id in [t for t, exp in self.ended.items() if exp + _ENDED_GRACE < now]:
                del self.ended[task_id]
        return len(gone)
