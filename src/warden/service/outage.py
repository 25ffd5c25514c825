"""Revocation during a database outage (ADR 0093).

Ending a task, revoking a credential and suspending an agent must work when the database does
not: an operator has to be able to stop an agent while PostgreSQL is down. When the normal path
fails with a storage error, the change is

1. applied to this replica's hot state at once (its denies hold from this moment on),
2. appended to the local outage journal (``service.outage_journal``, fsync per entry), and
3. answered ``202``: applied here, pending its database write.

A background loop replays the journal once the database answers — the normal path writes the
rows and the audit records and announces the change to the other replicas — and removes what
it replayed. Replay is idempotent (an already-ended task or suspended agent is a no-op) and
runs at start too, after re-applying every entry to the freshly loaded hot state, so a replica
restarted before the database came back keeps denying what it accepted. Until replay the
journal is the change's only durable record: its audit records are written at replay.

Only deny-ward changes take this path: nothing here can allow anything the database does not.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from typing import Any

from warden.core.clock import Clock
from warden.core.ids import new_id, validate_agent_name
from warden.core.model import AgentStatus, TaskStatus
from warden.errors import (
    AuditUnavailableError,
    ConflictError,
    NotFoundError,
    StorageError,
    TokenInvalidError,
)
from warden.service.agents import AgentService
from warden.service.credentials import CredentialService
from warden.service.outage_journal import OutageJournal
from warden.service.state import HotState
from warden.service.tasks import TaskService
from warden.tokens.verifier import VerifiedCredential

__all__ = ["OUTAGE_ERRORS", "OutageService"]

log = logging.getLogger("warden.outage")

# what sends a deny-ward change to the journal instead of a 503: the database, or the durable
# audit (ADR 0090) refusing — the journal is then the change's durable record (ADR 0093)
OUTAGE_ERRORS: tuple[type[Exception], ...] = (StorageError, AuditUnavailableError)

PENDING = "applied_locally_pending_write"


class OutageService:
    def __init__(
        self,
        journal: OutageJournal,
        state: HotState,
        tasks: TaskService,
        credentials: CredentialService,
        agents: AgentService,
        clock: Clock,
        *,
        replica: str,
    ) -> None:
        self._journal = journal
        self._state = state
        self._tasks = tasks
        self._credentials = credentials
        self._agents = agents
        self._clock = clock
        self._replica = replica
        self._replay_lock = threading.Lock()
        self.replayed = 0
        self._pending = bool(journal.entries())

    @property
    def pending(self) -> int:
        return len(self._journal.entries()) if self._pending else 0

    # -- accepting a change while the database is down ----------------------------------------
    def end_task(
        self, task_id: str, status: TaskStatus, *, actor: str, reason: str, error: Exception
    ) -> dict[str, Any]:
        entry = self._entry(
            "task.end", task_id=task_id, status=status.value, actor=actor, reason=reason
        )
        return self._accept(entry, error, {"task_id": task_id, "status": status.value})

    def revoke_credential(
        self, cred: VerifiedCredential, *, actor: str, error: Exception
    ) -> dict[str, Any]:
        entry = self._entry(
            "credential.revoke",
            jti=cred.jti,
            expires_at=cred.expires_at,
            subject=cred.subject,
            task_id=cred.task_id,
            actor=actor,
        )
        return self._accept(entry, error, {"jti": cred.jti})

    def revoke_token(self, token: str, *, actor: str, error: Exception) -> dict[str, Any]:
        """RFC 7009 during an outage: only Warden's own task credentials (a lease token needs
        the database to find its lease), so anything else re-raises ``error``."""
        try:
            cred = self._credentials.verify_signature(token)
        except TokenInvalidError:
            raise error from None
        return self.revoke_credential(cred, actor=actor, error=error)

    def suspend_agent(
        self, name: str, *, actor: str, reason: str, error: Exception
    ) -> dict[str, Any]:
        validate_agent_name(name)
        entry = self._entry("agent.suspend", name=name, actor=actor, reason=reason)
        return self._accept(entry, error, {"name": name, "status": "suspended"})

    def _entry(self, kind: str, **fields: Any) -> dict[str, Any]:
        return {"id": new_id("outage"), "kind": kind, "at": self._clock.now(), **fields}

    def _accept(
        self, entry: dict[str, Any], error: Exception, view: dict[str, Any]
    ) -> dict[str, Any]:
        self._apply_locally(entry)  # denies hold here from now, even if the append fails
        self._journal.append(entry)
        self._pending = True
        log.warning(
            "database unavailable: `%s` applied on this replica and journaled (%s)",
            entry["kind"],
            entry["id"],
        )
        return {
            **view,
            "state": PENDING,
            "detail": (
                "the database is unavailable; the change is in force on this replica and kept "
                "in its outage journal, and is written, audited and sent to the other replicas "
                "when the database returns"
            ),
            "error": str(getattr(error, "message", error))[:300],
            "journal_id": entry["id"],
            "replica": self._replica,
        }

    def _apply_locally(self, entry: dict[str, Any]) -> None:
        """The hot-state effect of one entry (no I/O, no announcement: peers hear at replay)."""
        kind = entry.get("kind")
        if kind == "task.end":
            ids = self._subtree(str(entry["task_id"]))
            ended = {i: (t.expires_at if (t := self._state.tasks.get(i)) else None) for i in ids}
            self._state.end_tasks(ended, {}, announce=False)
        elif kind == "credential.revoke":
            self._state.revoke(str(entry["jti"]), float(entry["expires_at"]), announce=False)
        elif kind == "agent.suspend":
            agent = self._state.agents_by_name.get(str(entry["name"]))
            if agent is not None and agent.status is AgentStatus.ACTIVE:
                suspended = replace(agent, status=AgentStatus.SUSPENDED)
                self._state.put_agent(suspended, announce=False)
            name = str(entry["name"])
            mine: dict[str, float | None] = {
                t.id: t.expires_at for t in list(self._state.tasks.values()) if t.agent_name == name
            }
            self._state.end_tasks(mine, {}, announce=False)

    def _subtree(self, task_id: str) -> list[str]:
        """The task and its delegated descendants this replica knows of."""
        children: dict[str, list[str]] = {}
        for task in list(self._state.tasks.values()):
            if task.parent_id is not None:
                children.setdefault(task.parent_id, []).append(task.id)
        out, frontier = [task_id], [task_id]
        while frontier:
            frontier = [c for parent in frontier for c in children.get(parent, [])]
            out += frontier
        return out

    # -- replay ---------------------------------------------------------------------------
    def restore(self) -> int:
        """At start: re-apply every journaled entry to the freshly loaded hot state."""
        entries = self._journal.entries()
        for entry in entries:
            self._apply_locally(entry)
        if entries:
            log.warning("outage journal holds %d change(s) to replay", len(entries))
        return len(entries)

    def replay(self) -> int:
        """Write what the journal holds; stops at the first failure (retried next tick)."""
        if not self._pending:
            return 0
        with self._replay_lock:
            entries = self._journal.entries()
            done: set[str] = set()
            try:
                for entry in entries:
                    self._replay_one(entry)
                    done.add(str(entry["id"]))
            except OUTAGE_ERRORS as exc:
                log.info("outage journal replay waits for the database: %s", exc)
            finally:
                self._journal.remove(done)
            self._pending = len(done) < len(entries)
            self.replayed += len(done)
            if done:
                log.info("outage journal: %d change(s) written and announced", len(done))
            return len(done)

    def _replay_one(self, entry: dict[str, Any]) -> None:
        kind, at, actor = entry.get("kind"), float(entry.get("at") or 0) or None, entry["actor"]
        note = {"journaled_at": at, "journal_id": entry["id"]}
        if kind == "task.end":
            try:
                self._tasks.end_tree(
                    str(entry["task_id"]),
                    TaskStatus(entry["status"]),
                    actor=actor,
                    reason=str(entry.get("reason") or ""),
                    at=at,
                )
            except NotFoundError:
                pass  # never existed: nothing to write
            except ConflictError:  # already ended: its row may be written without its record
                self._tasks.record_journaled_end(
                    str(entry["task_id"]),
                    actor=actor,
                    reason=str(entry.get("reason") or ""),
                    note=note,
                )
        elif kind == "credential.revoke":
            self._credentials.revoke_jti(
                str(entry["jti"]),
                float(entry["expires_at"]),
                subject=str(entry["subject"]),
                task_id=str(entry["task_id"]),
                actor=actor,
                at=at,
                extra=note,
            )
        elif kind == "agent.suspend":
            name, reason = str(entry["name"]), str(entry.get("reason") or "")
            try:
                self._agents.suspend(name, actor, reason)
            except NotFoundError:
                pass
            except ConflictError:  # suspended meanwhile: its tasks must still end
                self._agents.end_tasks(name, f"agent suspended: {reason}".strip(": "), actor)
        else:
            log.error("outage journal entry %s has unknown kind `%s`: dropped", entry["id"], kind)
