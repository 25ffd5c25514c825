"""Step-up approvals: open, coalesce, escalate, decide, grant once.

The decision path touches this service in two places, both cheap unless approvals are in play:

* ``has_grants(agent)`` (one dict lookup) before Cedar; only when the agent holds a live grant
  is the call's digest computed and matched, so the decision runs with
  ``context.warden.approval.granted == true``. An allowed decision then *spends* the grant
  (one atomic UPDATE in the database, so a grant is single-use across replicas).
* ``open(...)`` after an approval-required deny: an identical pending request is reused
  (coalesced); a recently denied identical action is refused without asking again; the agent's
  request rate and pending count are capped (flood guard); otherwise one row is written and
  the first escalation level is notified.

Humans decide through ``decide`` (operators only; the linked human must be eligible at the
request's current level or an earlier one, separation of duties holds, and the approver
confirms the digest they were shown). ``sweep`` (a background loop) escalates, times out,
cancels requests whose task ended, forgets spent grants and pulls changes made by other
replicas from the database.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from warden.approvals import APPROVERS_LEVEL, OWNER_LEVEL, ApprovalSettings, Requirement
from warden.approvals.requirement import extend_chain
from warden.behaviour import Claim, SharedCounters, SlidingCounter
from warden.core.clock import Clock
from warden.core.ids import new_id
from warden.core.masking import mask
from warden.core.model import (
    Agent,
    ApprovalRequest,
    ApprovalStatus,
    Operator,
    OperatorRole,
    TaskStatus,
)
from warden.core.ports import Store
from warden.errors import (
    AgentCannotApproveError,
    ApprovalClosedError,
    ApprovalDigestMismatchError,
    ApprovalNotPermittedError,
    CountersUnavailableError,
    DatabaseUnavailableError,
    NotFoundError,
    WardenError,
)
from warden.service.auditing import Auditor
from warden.service.notifications import Notifier
from warden.service.operators import acts_for
from warden.service.state import HotState, LiveTask

log = logging.getLogger("warden.approvals")

MAX_ARGUMENTS_SHOWN = 4000
DECIDING_ROLES = (OperatorRole.APPROVER, OperatorRole.ADMIN)


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=UTC).isoformat().replace("+00:00", "Z")


def _shown_arguments(arguments: Any) -> dict[str, Any]:
    """What approvers see of the arguments: masked, and bounded in size."""
    import json

    value = mask(arguments if isinstance(arguments, dict) else {"value": arguments})
    text = json.dumps(value, ensure_ascii=False, default=str)
    if len(text) > MAX_ARGUMENTS_SHOWN:
        return {"truncated": text[:MAX_ARGUMENTS_SHOWN]}
    return dict(value)


class ApprovalService:
    def __init__(
        self,
        store: Store,
        state: HotState,
        auditor: Auditor,
        clock: Clock,
        settings: ApprovalSettings,
        notifier: Notifier,
        base_url: str,
        *,
        counters: SharedCounters | None = None,
    ) -> None:
        self._counters = counters  # shared by every replica (ADR 0094), else in this process
        self._store = store
        self._state = state
        self._audit = auditor
        self._clock = clock
        self.settings = settings
        self._notify = notifier
        self._base = base_url.rstrip("/")
        self._lock = threading.RLock()
        self._by_id: dict[str, ApprovalRequest] = {}
        self._pending: dict[str, str] = {}  # digest -> request id
        self._grants: dict[str, str] = {}  # digest -> request id (approved, unspent)
        self._grant_agents: frozenset[str] = frozenset()
        self._denied: dict[str, tuple[str, float]] = {}  # digest -> (request id, until)
        self._created: dict[str, SlidingCounter] = {}
        self._synced_at = 0.0

    def _take(self, agent: str, now: float) -> bool:
        """Count one new request against ``requests_per_hour``; False when none is left."""
        limit = self.settings.requests_per_hour
        if self._counters is not None:
            claim = Claim("approvals_opened", 3600.0, 12, 1.0, limit)
            return self._counters.reserve(agent, [claim], now, "none").refused < 0
        counter = self._created.setdefault(agent, SlidingCounter(3600.0, 12))
        if counter.total(now) >= limit:
            return False
        counter.add(now)
        return True

    # -- memory --------------------------------------------------------------------------------
    def load(self) -> None:
        """Pending requests and recent decisions from the store (at start)."""
        now = self._clock.now()
        after: str | None = None
        while True:
            page = self._store.list_approvals(status=ApprovalStatus.PENDING, after=after, limit=500)
            for req in page:
                self._remember(req, now)
            if len(page) < 500:
                break
            after = page[-1].id
        horizon = max(self.settings.grant_ttl, self.settings.deny_cooldown)
        self._pull(now - horizon, now)

    def _pull(self, since: float, now: float) -> None:
        while True:
            page = self._store.list_approvals(updated_since=since, limit=500)
            for req in page:
                self._remember(req, now)
            if len(page) < 500 or page[-1].updated_at <= since:
                break
            since = page[-1].updated_at
        self._synced_at = now

    def _remember(self, req: ApprovalRequest, now: float) -> None:
        """Index one request by the state it is in (newest write wins)."""
        with self._lock:
            known = self._by_id.get(req.id)
            if known is not None and known.updated_at > req.updated_at:
                return
            self._by_id[req.id] = req
            digest = req.digest
            if self._pending.get(digest) == req.id and req.status is not ApprovalStatus.PENDING:
                del self._pending[digest]
            if self._grants.get(digest) == req.id and not self._live_grant(req, now):
                del self._grants[digest]
            if req.status is ApprovalStatus.PENDING:
                self._pending[digest] = req.id
            elif self._live_grant(req, now):
                self._grants[digest] = req.id
            elif req.status is ApprovalStatus.DENIED and req.decided_at is not None:
                until = req.decided_at + self.settings.deny_cooldown
                if until > now:
                    self._denied[digest] = (req.id, until)
            self._grant_agents = frozenset(self._by_id[i].agent for i in self._grants.values())

    @staticmethod
    def _live_grant(req: ApprovalRequest, now: float) -> bool:
        return (
            req.status is ApprovalStatus.APPROVED
            and req.used_at is None
            and req.grant_expires_at is not None
            and req.grant_expires_at > now
        )

    # -- the decision path -----------------------------------------------------------------------
    def pending_count(self) -> int:
        """Requests still waiting for a human (the metrics gauge)."""
        return len(self._pending)

    def has_grants(self, agent: str) -> bool:
        return agent in self._grant_agents

    def grant_for(self, digest: str, now: float) -> ApprovalRequest | None:
        rid = self._grants.get(digest)
        if rid is None:
            return None
        req = self._by_id.get(rid)
        if req is None or not self._live_grant(req, now):
            return None
        return req

    def spend(self, grant: ApprovalRequest, decision_id: str, now: float) -> bool:
        """Use the grant for one allowed decision; False when it was spent or expired meanwhile."""
        try:
            ok = self._store.use_approval(grant.id, used_at=now, decision_id=decision_id)
        except WardenError:
            log.exception("could not spend approval %s", grant.id)
            ok = False
        spent = replace(grant, used_at=now, used_by_decision=decision_id, updated_at=now)
        self._remember(spent if ok else replace(grant, updated_at=now, used_at=now), now)
        if ok:
            self._audit.record(
                "approval.used",
                "warden",
                {"request_id": grant.id, "digest": grant.digest, "decision_id": decision_id},
                agent=grant.agent,
                task_id=grant.task_id,
                decision_id=decision_id,
            )
        return ok

    def open(
        self,
        *,
        agent: Agent,
        task: LiveTask,
        action: str,
        resource: tuple[str, str],
        arguments: Any,
        digest: str,
        requirement: Requirement,
        decision_id: str,
        now: float,
    ) -> tuple[ApprovalRequest | None, str]:
        """Find or open the request for this exact call.

        Returns (request, outcome); outcome is ``opened``, ``coalesced``, ``denied`` (a recent
        denial of the same action), ``rate_limited`` or ``unavailable`` (the request could
        not be stored: the call stays denied).
        """
        with self._lock:
            rid = self._pending.get(digest)
            if rid is not None and rid in self._by_id:
                req = self._by_id[rid]
                req = replace(req, coalesced=req.coalesced + 1)
                self._by_id[rid] = req  # the count is informative; stored on the next change
                return req, "coalesced"
            denied = self._denied.get(digest)
            if denied is not None and denied[1] > now and denied[0] in self._by_id:
                return self._by_id[denied[0]], "denied"
            pending = sum(1 for i in self._pending.values() if self._by_id[i].agent == agent.name)
            try:
                over_rate = pending < self.settings.max_pending_per_agent and not self._take(
                    agent.name, now
                )
            except CountersUnavailableError:
                return None, "unavailable"  # fail closed: the call stays denied
            if pending >= self.settings.max_pending_per_agent or over_rate:
                self._audit.record(
                    "approval.rate_limited",
                    agent.spiffe_id,
                    {
                        "action": action,
                        "digest": digest,
                        "pending": pending,
                        "max_pending": self.settings.max_pending_per_agent,
                        "requests_per_hour": self.settings.requests_per_hour,
                    },
                    agent=agent.name,
                    task_id=task.id,
                    decision_id=decision_id,
                )
                return None, "rate_limited"
        chain = extend_chain(
            requirement.chain, self.settings.escalation.get(agent.risk_tier.value, ())
        )
        after = requirement.escalate_after or self.settings.escalate_after
        req = ApprovalRequest(
            id=new_id("apr"),
            status=ApprovalStatus.PENDING,
            digest=digest,
            agent=agent.name,
            owner=agent.owner,
            task_id=task.id,
            action=action,
            resource_type=resource[0],
            resource_id=resource[1],
            arguments=_shown_arguments(arguments),
            policies=requirement.policies,
            chain=chain,
            level=1,
            escalate_after=after,
            escalate_at=now + after,
            created_at=now,
            updated_at=now,
            source=requirement.source,
            on_behalf_of=task.on_behalf_of,
            separation_of_duties=requirement.separation_of_duties
            or self.settings.separation_of_duties,
            evaluation_id=decision_id,
        )
        try:
            self._store.create_approval(req)
        except WardenError:
            log.exception("could not store an approval request")
            return None, "unavailable"
        self._remember(req, now)
        self._audit.record(
            "approval.requested",
            agent.spiffe_id,
            {
                "request_id": req.id,
                "digest": digest,
                "action": action,
                "resource": {"type": resource[0], "id": resource[1]},
                "arguments": req.arguments,
                "policies": list(req.policies),
                "chain": list(chain),
                "escalate_after": after,
                "source": req.source,
                "separation_of_duties": req.separation_of_duties,
            },
            agent=agent.name,
            task_id=task.id,
            decision_id=decision_id,
        )
        self._notify.send(
            "approval.requested",
            self.view(req),
            self._notify.recipients([chain[0]], req.owner) | {req.owner},
            agent=req.agent,
            task_id=req.task_id,
        )
        return req, "opened"

    # -- humans -----------------------------------------------------------------------------------
    def get(self, request_id: str) -> ApprovalRequest:
        """The request as the database has it now.

        Read through, not from the in-memory copy: another replica may have decided or spent it a
        moment ago and its change may not have reached this one yet, and an operator reading it
        must not see it still pending or unused. The copy answers only while the database is down.
        """
        try:
            return self.refresh(request_id)
        except DatabaseUnavailableError:
            req = self._by_id.get(request_id)
            if req is None:
                raise
            return req

    def peek(self, request_id: str) -> ApprovalRequest | None:
        """The in-memory copy only (for waiters polling without I/O)."""
        return self._by_id.get(request_id)

    def refresh(self, request_id: str) -> ApprovalRequest:
        """Re-read from the store (another replica may have decided it)."""
        req = self._store.fetch_approval(request_id)
        self._remember(req, self._clock.now())
        return self._by_id.get(request_id, req)

    def list(self, **filters: Any) -> list[ApprovalRequest]:
        return self._store.list_approvals(**filters)

    def eligible(self, op: Operator, req: ApprovalRequest) -> str | None:
        """Why ``op`` may not decide ``req`` now, or None when they may."""
        if op.role not in DECIDING_ROLES:
            return f"operator role `{op.role.value}` may not decide approvals"
        levels = req.chain[: max(1, req.level)]
        allowed = False
        for level in levels:
            if level == OWNER_LEVEL:
                allowed = allowed or acts_for(op, req.owner)
            elif level == APPROVERS_LEVEL:
                allowed = True
            elif level.startswith("group:"):
                members = self.settings.groups.get(level.removeprefix("group:"), frozenset())
                allowed = allowed or (op.human is not None and op.human in members)
        if not allowed:
            return (
                "not an approver of this request at its current level (" + ", ".join(levels) + ")"
            )
        if req.separation_of_duties:
            if op.human is None:
                return "separation of duties: this operator account is not linked to a person"
            if req.on_behalf_of is not None and op.human == req.on_behalf_of:
                return (
                    f"separation of duties: `{op.human}` is the person this task acts for and "
                    "may not approve its own request"
                )
        return None

    def decide(
        self,
        request_id: str,
        op: Operator,
        *,
        approve: bool,
        reason: str,
        digest: str | None,
    ) -> ApprovalRequest:
        now = self._clock.now()
        actor = f"operator:{op.name}"
        try:
            req = self.refresh(request_id)
        except NotFoundError:
            self._refused(actor, request_id, None, "not_found", "no such approval request")
            raise
        if req.status is ApprovalStatus.PENDING and self._deadline(req) <= now:
            self._timeout(req, now)
            req = self.get(request_id)
        if req.status is not ApprovalStatus.PENDING:
            state = "used" if req.used_at is not None else req.status.value
            self._refused(actor, request_id, req, "closed", f"the request is {state}")
            raise ApprovalClosedError(
                f"approval request `{request_id}` is {state}: it can no longer be decided",
                detail={"status": req.status.value, "used": req.used_at is not None},
            )
        why = self.eligible(op, req)
        if why is not None:
            self._refused(actor, request_id, req, "not_permitted", why)
            raise ApprovalNotPermittedError(why)
        if (approve and digest is None) or (digest is not None and digest != req.digest):
            message = (
                "approving needs the `digest` of the action you were shown"
                if digest is None
                else "the `digest` you confirmed is not the one this request is bound to"
            )
            self._refused(actor, request_id, req, "digest_mismatch", message)
            raise ApprovalDigestMismatchError(message)
        status = ApprovalStatus.APPROVED if approve else ApprovalStatus.DENIED
        decided = replace(
            req,
            status=status,
            updated_at=now,
            decided_by=op.human or actor,
            decided_at=now,
            decision_reason=reason,
            decision_auth={
                "method": "operator_token",
                "operator": op.id,
                "operator_name": op.name,
                "role": op.role.value,
                "human": op.human,
            },
            seen={
                "digest": req.digest,
                "agent": req.agent,
                "task_id": req.task_id,
                "action": req.action,
                "resource": {"type": req.resource_type, "id": req.resource_id},
                "arguments": req.arguments,
                "level": req.chain[req.level - 1],
            },
            grant_expires_at=now + self.settings.grant_ttl if approve else None,
        )
        self._store.update_approval(decided, expect_status=ApprovalStatus.PENDING)
        self._remember(decided, now)
        self._audit.record(
            f"approval.{status.value}",
            actor,
            {
                "request_id": req.id,
                "digest": req.digest,
                "reason": reason,
                "decided_by": decided.decided_by,
                "auth": decided.decision_auth,
                "seen": decided.seen,
                "level": req.level,
                "waited": round(now - req.created_at, 3),
                "grant_expires_at": decided.grant_expires_at,
            },
            agent=req.agent,
            task_id=req.task_id,
        )
        self._notify.send(
            f"approval.{status.value}",
            self.view(decided),
            self._notify.recipients(req.chain[: req.level], req.owner),
            agent=req.agent,
            task_id=req.task_id,
        )
        return decided

    def refuse_agent(self, request_id: str, subject: str) -> None:
        """An agent credential tried to decide: record it, then refuse."""
        self._refused(
            subject, request_id, self._by_id.get(request_id), "agent", "agents never approve"
        )
        raise AgentCannotApproveError("an agent can never approve or deny an approval request")

    def _refused(
        self,
        actor: str,
        request_id: str,
        req: ApprovalRequest | None,
        reason: str,
        detail: str,
    ) -> None:
        self._audit.record(
            "approval.refused",
            actor,
            {"request_id": request_id[:100], "reason": reason, "detail": detail},
            agent=req.agent if req else None,
            task_id=req.task_id if req else None,
        )

    # -- the background sweep ---------------------------------------------------------------------
    def _deadline(self, req: ApprovalRequest) -> float:
        """When the last level times out (if nobody escalates it sooner)."""
        return req.escalate_at + (len(req.chain) - req.level) * req.escalate_after

    def sweep(self) -> None:
        now = self._clock.now()
        try:
            self._pull(self._synced_at - 2.0, now)
        except WardenError:
            log.exception("approval sync failed")
        with self._lock:
            pending = [self._by_id[i] for i in list(self._pending.values())]
            for digest, (_, until) in list(self._denied.items()):
                if until <= now:
                    del self._denied[digest]
            for digest, rid in list(self._grants.items()):
                if not self._live_grant(self._by_id[rid], now):
                    del self._grants[digest]
            self._grant_agents = frozenset(self._by_id[i].agent for i in self._grants.values())
            indexed = set(self._pending.values()) | set(self._grants.values())
            indexed |= {rid for rid, _ in self._denied.values()}
            for rid in [r for r in self._by_id if r not in indexed]:
                del self._by_id[rid]
        for req in pending:
            try:
                if not self._task_alive(req.task_id):
                    self._close(req, ApprovalStatus.CANCELLED, now, "the task ended", "cancelled")
                elif now >= req.escalate_at:
                    if req.level < len(req.chain):
                        self._escalate(req, now)
                    else:
                        self._timeout(req, now)
            except ApprovalClosedError:
                self.refresh(req.id)  # another replica got there first
            except WardenError:
                log.exception("approval sweep failed for %s", req.id)

    def _task_alive(self, task_id: str) -> bool:
        if task_id in self._state.tasks:
            return True
        try:
            return self._store.fetch_task(task_id).status is TaskStatus.ACTIVE
        except NotFoundError:
            return False

    def _escalate(self, req: ApprovalRequest, now: float) -> None:
        level = req.level + 1
        escalated = replace(req, level=level, escalate_at=now + req.escalate_after, updated_at=now)
        self._store.update_approval(escalated, expect_status=ApprovalStatus.PENDING)
        self._remember(escalated, now)
        self._audit.record(
            "approval.escalated",
            "warden",
            {
                "request_id": req.id,
                "from": req.chain[req.level - 1],
                "to": req.chain[level - 1],
                "level": level,
                "reason": f"no answer within {req.escalate_after:g} s",
            },
            agent=req.agent,
            task_id=req.task_id,
        )
        self._notify.send(
            "approval.escalated",
            self.view(escalated),
            self._notify.recipients([req.chain[level - 1]], req.owner) | {req.owner},
            agent=req.agent,
            task_id=req.task_id,
        )

    def _timeout(self, req: ApprovalRequest, now: float) -> None:
        reason = f"no approver answered within {req.escalate_after:g} s at the last level"
        self._close(req, ApprovalStatus.DENIED, now, reason, "timed_out")

    def _close(
        self, req: ApprovalRequest, status: ApprovalStatus, now: float, reason: str, event: str
    ) -> None:
        closed = replace(
            req,
            status=status,
            updated_at=now,
            decided_by="warden",
            decided_at=now,
            decision_reason=reason,
        )
        self._store.update_approval(closed, expect_status=ApprovalStatus.PENDING)
        self._remember(closed, now)
        self._audit.record(
            f"approval.{event}",
            "warden",
            {"request_id": req.id, "status": status.value, "reason": reason, "level": req.level},
            agent=req.agent,
            task_id=req.task_id,
        )
        self._notify.send(
            f"approval.{event}",
            self.view(closed),
            self._notify.recipients(req.chain, req.owner),
            agent=req.agent,
            task_id=req.task_id,
        )

    # -- views ------------------------------------------------------------------------------------
    def links(self, req: ApprovalRequest) -> dict[str, str]:
        base = f"{self._base}/v1/approvals/{req.id}"
        return {
            "self": base,
            "wait": f"{base}/wait",
            "approve": f"{base}/approve",
            "deny": f"{base}/deny",
        }

    def view(self, req: ApprovalRequest) -> dict[str, Any]:
        """The full record, for operators and webhooks."""
        pending = req.status is ApprovalStatus.PENDING
        return {
            "id": req.id,
            "status": req.status.value,
            "used": req.used_at is not None,
            "agent": req.agent,
            "owner": req.owner,
            "task_id": req.task_id,
            "on_behalf_of": req.on_behalf_of,
            "action": req.action,
            "resource": {"type": req.resource_type, "id": req.resource_id},
            "arguments": req.arguments,
            "digest": req.digest,
            "policies": list(req.policies),
            "source": req.source,
            "chain": list(req.chain),
            "level": req.level,
            "awaiting": req.chain[req.level - 1] if pending else None,
            "separation_of_duties": req.separation_of_duties,
            "coalesced": req.coalesced,
            "created_at": req.created_at,
            "updated_at": req.updated_at,
            "escalate_at": req.escalate_at if pending else None,
            "expires_at": self._deadline(req) if pending else None,
            "decided_by": req.decided_by,
            "decided_at": req.decided_at,
            "decision_reason": req.decision_reason,
            "decision_auth": req.decision_auth,
            "seen": req.seen,
            "grant_expires_at": req.grant_expires_at,
            "used_at": req.used_at,
            "used_by_decision": req.used_by_decision,
            "evaluation_id": req.evaluation_id,
            "links": self.links(req),
        }

    def handle(self, req: ApprovalRequest) -> dict[str, Any]:
        """The AuthZEN Access Request task handle: what an agent or PEP may see.

        No approver identities, arguments or policy ids (ARAP: task status must not disclose
        them to a caller not entitled to them).
        """
        links = self.links(req)
        pending = req.status is ApprovalStatus.PENDING
        task: dict[str, Any] = {
            "id": req.id,
            "status": req.status.value,
            "status_endpoint": links["self"],
            "wait_endpoint": links["wait"],
            "expires_at": iso(self._deadline(req)) if pending else None,
            "progress": {
                "current_step": req.level,
                "total_steps": len(req.chain),
                "step_name": req.chain[req.level - 1],
            },
        }
        # top-level id and status too, for clients that read an approval as {"id", "status"}
        out: dict[str, Any] = {"id": req.id, "status": req.status.value, "task": task}
        if req.status is ApprovalStatus.APPROVED:
            out["result"] = {
                "mode": "reevaluate",
                "approval": {
                    "id": req.id,
                    "approved_at": iso(req.decided_at),
                    "approved_until": iso(req.grant_expires_at),
                    "used": req.used_at is not None,
                },
            }
        elif not pending:
            out["result"] = {"reason": req.decision_reason}
        return out

    def decision_context(self, req: ApprovalRequest, outcome: str, now: float) -> dict[str, Any]:
        """The ``context`` members of an approval-required (or approval-denied) decision."""
        approvers = list(req.chain[req.level - 1 :])
        description = (
            f"`{req.action}` on {req.resource_type} `{req.resource_id}` needs approval by "
            + " then ".join(approvers)
        )
        return {
            "evaluation_id": req.evaluation_id,
            "evaluated_at": iso(now),
            "access_request": {
                "template": f"warden-step-up:{req.source}",
                "expires_at": iso(self._deadline(req)),
                "display": {"title": "Approval required", "description": description},
            },
            "approval_request": {
                **self.handle(req)["task"],
                "approvers": approvers,
                "grant_ttl": self.settings.grant_ttl,
                "coalesced": outcome == "coalesced",
            },
        }
