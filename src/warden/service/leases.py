"""Leases: just-in-time downstream credentials that live and die with their task.

Two kinds:

* ``postgres`` — a login role on a configured target (``broker.templates``), with a random
  password, ``VALID UNTIL`` no later than the task's expiry and the target's grants. The
  connection details (password included) are returned once and never stored.
* ``jwt`` — an audience-bound token for one configured downstream service
  (``tokens.downstream``).

Rules that keep "no credential outlives its task" true:

1. **Record first.** The lease row (state ``creating``, with the role name) is committed before
   anything exists downstream, so a crash can leave a row without a role but never a role
   without a row.
2. **Revoke with the task.** Ending a task (complete, fail, expire, revoke, kill, or its parent
   ending) revokes its open leases at once (``TaskService.on_end``). A PostgreSQL lease is
   ``revoked`` only once the role is confirmed gone; a failure leaves it ``revoking`` with the
   error, reported as pending, and the reaper retries.
3. **Reap.** At start-up and every ``reaper_interval`` seconds the reaper revokes open leases of
   ended tasks, leases past their expiry, ``revoking`` leases, ``creating`` leases older than a
   grace period, and drops roles on a target that carry Warden's role prefix but belong to no
   open lease (orphans).

A lease needs the target's (or service's) ``scope`` in the caller's task scope.
"""

from __future__ import annotations

import logging
import math
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from warden.broker.postgres import PostgresBroker
from warden.broker.templates import DownstreamService, PostgresTarget
from warden.core.clock import Clock
from warden.core.ids import new_id
from warden.core.model import Lease, LeaseKind, LeaseState, Task, TaskStatus
from warden.core.ports import Store
from warden.errors import (
    InvalidParameterError,
    LeaseError,
    LeaseTargetUnknownError,
    PermissionDeniedError,
    TaskNotActiveError,
    WardenError,
)
from warden.service.auditing import Auditor
from warden.service.delegation import act_claim
from warden.tokens.downstream import DownstreamTokenIssuer

log = logging.getLogger("warden.leases")

OPEN = (LeaseState.CREATING, LeaseState.ACTIVE, LeaseState.REVOKING)
CREATING_GRACE = 60.0  # a `creating` lease older than this has lost its creator (crash)


@dataclass(frozen=True)
class Caller:
    """Who asks for a lease: the agent (with its live credential's scope) or an operator."""

    actor: str
    scope: frozenset[str] | None  # None: an operator, bounded by the task's granted scope
    jkt: str | None = None  # the caller credential's DPoP binding, copied to JWT leases


@dataclass
class ReapReport:
    revoked: int = 0
    pending: int = 0
    orphans_removed: int = 0
    errors: int = 0


class LeaseService:
    def __init__(
        self,
        store: Store,
        auditor: Auditor,
        clock: Clock,
        downstream: DownstreamTokenIssuer,
        *,
        targets: Mapping[str, PostgresTarget],
        services: Mapping[str, DownstreamService],
        reaper_interval: float = 30.0,
        creating_grace: float = CREATING_GRACE,
    ) -> None:
        self._store = store
        self._audit = auditor
        self._clock = clock
        self._downstream = downstream
        self._targets = dict(targets)
        self._services = dict(services)
        self._brokers = {name: PostgresBroker(t) for name, t in self._targets.items()}
        self._interval = reaper_interval
        self._grace = creating_grace
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._reap_lock = threading.Lock()

    @property
    def targets(self) -> dict[str, PostgresTarget]:
        return dict(self._targets)

    @property
    def services(self) -> dict[str, DownstreamService]:
        return dict(self._services)

    # -- creating ---------------------------------------------------------------------------------
    def create(self, task_id: str, body: Mapping[str, Any], caller: Caller) -> dict[str, Any]:
        """Mint a lease for an active task; the response holds the secret, shown this once."""
        kind_raw = body.get("kind", LeaseKind.POSTGRES.value)
        try:
            kind = LeaseKind(kind_raw)
        except ValueError:
            raise InvalidParameterError(
                f"lease `kind` must be postgres or jwt, not `{str(kind_raw)[:40]}`"
            ) from None
        name = body.get("target") if kind is LeaseKind.POSTGRES else body.get("audience")
        field = "target" if kind is LeaseKind.POSTGRES else "audience"
        if not isinstance(name, str) or not name:
            raise InvalidParameterError(f"a {kind.value} lease needs `{field}`")
        ttl = body.get("ttl")
        if ttl is not None and (
            isinstance(ttl, bool) or not isinstance(ttl, int | float) or not ttl > 0
        ):
            raise InvalidParameterError("lease `ttl` must be a positive number of seconds")
        task = self._store.fetch_task(task_id)
        now = self._clock.now()
        refusal = self._refusal(task, kind, name, caller, now)
        if refusal is not None:
            error, reason = refusal
            self._audit.record(
                "lease.refused",
                caller.actor,
                {"kind": kind.value, field: name[:200], "reason": reason},
                agent=task.agent_name,
                task_id=task.id,
            )
            raise error
        if kind is LeaseKind.POSTGRES:
            return self._create_postgres(task, self._targets[name], ttl, caller, now)
        return self._create_jwt(task, self._services[name], ttl, caller, now)

    def _refusal(
        self, task: Task, kind: LeaseKind, name: str, caller: Caller, now: float
    ) -> tuple[WardenError, str] | None:
        if task.status is not TaskStatus.ACTIVE or task.expires_at <= now:
            state = task.status.value if task.status is not TaskStatus.ACTIVE else "expired"
            return TaskNotActiveError(f"task `{task.id}` is {state}: no leases"), "task_not_active"
        known = self._targets if kind is LeaseKind.POSTGRES else self._services
        if name not in known:
            what = "lease target" if kind is LeaseKind.POSTGRES else "downstream service"
            return LeaseTargetUnknownError(f"no {what} `{name[:100]}` is configured"), "unknown"
        needed = known[name].scope
        held = caller.scope if caller.scope is not None else frozenset(task.granted_scope)
        if needed not in held:
            return (
                PermissionDeniedError(f"a lease on `{name}` needs `{needed}` in the task's scope"),
                "scope",
            )
        return None

    def _expiry(self, task: Task, max_ttl: float, ttl: float | None, now: float) -> float:
        return math.floor(min(now + min(ttl or max_ttl, max_ttl), task.expires_at))

    def _create_postgres(
        self,
        task: Task,
        target: PostgresTarget,
        ttl: float | None,
        caller: Caller,
        now: float,
    ) -> dict[str, Any]:
        broker = self._brokers[target.name]
        lease = Lease(
            id=new_id("lease"),
            task_id=task.id,
            agent_name=task.agent_name,
            kind=LeaseKind.POSTGRES,
            target=target.name,
            principal=broker.new_role_name(),
            created_at=now,
            expires_at=self._expiry(task, target.max_ttl, ttl, now),
            updated_at=now,
        )
        self._store.create_lease(lease)  # rule 1: recorded before it exists
        password = secrets.token_urlsafe(32)
        try:
            broker.create_role(lease.principal, password, valid_until=lease.expires_at)
        except LeaseError as exc:
            self._failed(lease, exc, caller.actor)
            raise
        lease = replace(lease, state=LeaseState.ACTIVE, updated_at=self._clock.now())
        self._store.update_lease(lease)
        # the task may have ended on another replica while the role was being made
        if self._store.fetch_task(task.id).status is not TaskStatus.ACTIVE:
            self.revoke(lease, caller.actor, "task ended while the lease was created")
            raise TaskNotActiveError(f"task `{task.id}` ended: no leases")
        self._audit.record(
            "lease.created",
            caller.actor,
            {
                "lease": lease.id,
                "kind": lease.kind.value,
                "target": target.name,
                "role": lease.principal,
                "expires_at": lease.expires_at,
                "chain": list(task.chain),
            },
            agent=task.agent_name,
            task_id=task.id,
        )
        return {
            **lease_view(lease),
            "username": lease.principal,
            "password": password,
            "host": target.host,
            "port": target.port,
            "database": target.database,
        }

    def _failed(self, lease: Lease, exc: LeaseError, actor: str) -> None:
        """Creation failed: make sure nothing is left downstream before saying so."""
        try:
            self._brokers[lease.target].drop_role(lease.principal)
            state = LeaseState.FAILED
        except LeaseError:
            state = LeaseState.REVOKING  # unknown downstream: the reaper finishes the job
        self._store.update_lease(
            replace(
                lease,
                state=state,
                updated_at=self._clock.now(),
                attempts=lease.attempts + 1,
                last_error=exc.message[:500],
            )
        )
        self._audit.record(
            "lease.failed",
            actor,
            {"lease": lease.id, "target": lease.target, "error": exc.message[:500]},
            agent=lease.agent_name,
            task_id=lease.task_id,
        )

    def _create_jwt(
        self,
        task: Task,
        service: DownstreamService,
        ttl: float | None,
        caller: Caller,
        now: float,
    ) -> dict[str, Any]:
        lease = Lease(
            id=new_id("lease"),
            task_id=task.id,
            agent_name=task.agent_name,
            kind=LeaseKind.JWT,
            target=service.name,
            principal=secrets.token_urlsafe(16),
            created_at=now,
            expires_at=self._expiry(task, service.max_ttl, ttl, now),
            kid=self._downstream.current_kid,
            updated_at=now,
        )
        self._store.create_lease(lease)
        extra: dict[str, Any] = {}
        if len(task.chain) > 1:
            extra["act"] = act_claim(task.chain[:-1])
        if caller.jkt is not None:
            extra["cnf"] = {"jkt": caller.jkt}
        issued = self._downstream.issue(
            jti=lease.principal,
            subject=task.spiffe_id,
            audience=service.audience,
            client_id=task.agent_name,
            scope=service.scope,
            task_id=task.id,
            lease_id=lease.id,
            not_after=lease.expires_at,
            extra_claims=extra,
        )
        lease = replace(lease, state=LeaseState.ACTIVE, kid=issued.kid)
        self._store.update_lease(lease)
        self._audit.record(
            "lease.created",
            caller.actor,
            {
                "lease": lease.id,
                "kind": lease.kind.value,
                "target": service.name,
                "audience": service.audience,
                "jti": lease.principal,
                "expires_at": lease.expires_at,
                "chain": list(task.chain),
            },
            agent=task.agent_name,
            task_id=task.id,
        )
        return {
            **lease_view(lease),
            "audience": service.audience,
            "token": issued.token,
            "token_type": "DPoP" if caller.jkt else "Bearer",
        }

    # -- revoking ---------------------------------------------------------------------------------
    def revoke(
        self, lease: Lease, actor: str, reason: str, *, chain: list[str] | None = None
    ) -> bool:
        """Revoke one lease; True once it is confirmed gone, False while still pending."""
        if lease.state in (LeaseState.REVOKED, LeaseState.FAILED):
            return True
        if chain is None:
            chain = self._chain_of(lease.task_id)
        now = self._clock.now()
        attempt = replace(
            lease, state=LeaseState.REVOKING, updated_at=now, attempts=lease.attempts + 1
        )
        try:
            self._store.update_lease(attempt)
            if lease.kind is LeaseKind.POSTGRES:
                broker = self._brokers.get(lease.target)
                if broker is None:
                    raise LeaseError(f"lease target `{lease.target}` is no longer configured")
                broker.drop_role(lease.principal)
        except (LeaseError, WardenError) as exc:
            try:
                self._store.update_lease(replace(attempt, last_error=exc.message[:500]))
            except WardenError:
                pass  # the row stays as it was; the reaper retries from there
            self._audit.record(
                "lease.revoke_failed",
                actor,
                {
                    "lease": lease.id,
                    "target": lease.target,
                    "attempt": attempt.attempts,
                    "error": exc.message[:500],
                    "chain": chain,
                },
                agent=lease.agent_name,
                task_id=lease.task_id,
            )
            return False
        done = replace(
            attempt, state=LeaseState.REVOKED, revoked_at=self._clock.now(), last_error=None
        )
        self._store.update_lease(done)
        self._audit.record(
            "lease.revoked",
            actor,
            {
                "lease": lease.id,
                "kind": lease.kind.value,
                "target": lease.target,
                "principal": lease.principal,
                "reason": reason,
                "chain": chain,
            },
            agent=lease.agent_name,
            task_id=lease.task_id,
        )
        return True

    def revoke_for_tasks(self, tasks: list[Task], actor: str) -> dict[str, Any]:
        """``TaskService.on_end`` listener: revoke every open lease of the ended tasks."""
        revoked: list[str] = []
        pending: list[str] = []
        for task in tasks:
            for lease in self._store.list_leases(task_id=task.id, states=OPEN):
                reason = f"task {task.status.value}"
                done = self.revoke(lease, actor, reason, chain=list(task.chain))
                (revoked if done else pending).append(lease.id)
        return {"revoked": revoked, "pending": pending}

    def _chain_of(self, task_id: str) -> list[str]:
        try:
            return list(self._store.fetch_task(task_id).chain)
        except WardenError:
            return []

    def list_for_task(self, task_id: str) -> list[Lease]:
        self._store.fetch_task(task_id)  # NotFoundError for an unknown task
        return self._store.list_leases(task_id=task_id)

    def fetch(self, lease_id: str) -> Lease:
        return self._store.fetch_lease(lease_id)

    # -- the reaper -------------------------------------------------------------------------------
    def reap(self) -> ReapReport:
        """One reconciliation pass (see the module docstring)."""
        with self._reap_lock:
            report = ReapReport()
            now = self._clock.now()
            due: dict[str, tuple[Lease, str]] = {}
            for lease in self._store.list_leases_of_ended_tasks():
                due[lease.id] = (lease, "task ended")
            for lease in self._store.list_leases(states=OPEN):
                if lease.id in due:
                    continue
                if lease.state is LeaseState.REVOKING:
                    due[lease.id] = (lease, "revocation retried")
                elif lease.expires_at <= now:
                    due[lease.id] = (lease, "lease expired")
                elif lease.state is LeaseState.CREATING and lease.created_at + self._grace <= now:
                    due[lease.id] = (lease, "creation never finished")
            for lease, reason in due.values():
                if self.revoke(lease, "warden:reaper", reason):
                    report.revoked += 1
                else:
                    report.pending += 1
            self._remove_orphans(report)
            return report

    def _remove_orphans(self, report: ReapReport) -> None:
        found: dict[str, list[str]] = {}
        for name, broker in self._brokers.items():
            try:
                found[name] = broker.list_roles()
            except LeaseError as exc:
                report.errors += 1
                log.warning("reaper cannot list roles: %s", exc.message)
        if not found:
            return
        # listed after the roles: a lease recorded meanwhile is known here (rule 1)
        known = {
            lease.principal
            for lease in self._store.list_leases(states=OPEN)
            if lease.kind is LeaseKind.POSTGRES
        }
        for name, roles in found.items():
            for role in roles:
                if role in known:
                    continue
                try:
                    self._brokers[name].drop_role(role)
                except LeaseError as exc:
                    report.errors += 1
                    log.warning("reaper cannot drop an orphaned role: %s", exc.message)
                    continue
                report.orphans_removed += 1
                self._audit.record(
                    "lease.orphan_removed", "warden:reaper", {"target": name, "role": role}
                )

    def start(self) -> None:
        if not self._brokers and not self._services:
            return
        self._thread = threading.Thread(target=self._loop, name="warden-reaper", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:  # first pass right away: reconcile what a crash left behind
            try:
                report = self.reap()
                if report.revoked or report.orphans_removed or report.pending:
                    log.info("lease reaper: %s", report)
            except Exception:  # the loop must survive a database outage; it retries
                log.exception("lease reaper failed")
            if self._stop.wait(self._interval):
                return

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)


def lease_view(lease: Lease) -> dict[str, Any]:
    """A lease without secrets."""
    return {
        "id": lease.id,
        "task_id": lease.task_id,
        "agent": lease.agent_name,
        "kind": lease.kind.value,
        "target": lease.target,
        "principal": lease.principal,
        "state": lease.state.value,
        "created_at": lease.created_at,
        "expires_at": lease.expires_at,
        "revoked_at": lease.revoked_at,
        "attempts": lease.attempts,
        "last_error": lease.last_error,
    }
