"""Runtime decisions (AuthZEN 1.0 over Cedar), with Warden's agent mode.

Agent mode (``subject.type == "agent"``): the subject must carry its task credential in
``subject.properties.token``. The credential is verified (signature, claims, revocation, task
and agent active); the principal becomes ``Agent::"<SPIFFE ID>"`` with the agent's registered
attributes and groups (PEP-supplied subject properties are ignored); the action must be inside
the credential's scope before Cedar runs; task, scope, owner and the delegation chain reach
Cedar under ``context.warden`` (``chain``: SPIFFE IDs from the root task's agent to this one;
``depth``: delegations from the root). Every decision is an audit event naming the chain.
Callers see opaque reasons; the audit record holds the precise one.

A DPoP-bound credential (``cnf.jkt``) also needs ``subject.properties.dpop``: the proof the
agent sent with the original request, which is checked against that request as the PEP saw it,
``context.http.method`` and ``context.http.uri`` (RFC 9449 §4.3, with replay detection shared by
every replica). Without a valid proof the decision is a deny (reason ``invalid_dpop_proof``).

Step-up and behaviour (agent mode): the behaviour monitor observes the call before Cedar (its
live facts are ``context.warden.behaviour``; a behavioural suspension or an exhausted budget is
a refusal); a live approval grant for this exact call sets ``context.warden.approval.granted``
and is spent by the allowed decision. A deny whose determining forbids all carry
``@approval(...)`` — or an allowed high-risk call while behavioural step-up is on — is
answered *approval required*: ``decision: false`` with ``context.reason ==
"approval_required"``, the AuthZEN Access Request members (``evaluation_id``,
``evaluated_at``, ``access_request``) and Warden's ``approval_request`` task handle (id,
status, who approves, where to wait). See docs/approvals.md.

Listings (``context.listing == true``): a PEP that only asks whether to *show* an item — the MCP
proxy filtering ``tools/list`` — runs no call, so nobody is asked to approve one and no grant is
spent: such a decision answers ``approval_required`` without opening a request, and checks a
DPoP proof without spending it (the PEP decides once per listed item for one request, and the
MCP proxy already refused a replayed request). The flag never turns a deny into an allow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from warden.approvals import OWNER_LEVEL, Requirement, action_digest, requirement_from
from warden.authz.authzen import EvaluationInput, SearchInput, run_search, to_cedar
from warden.authz.pdp import PolicyDecisionPoint
from warden.authz.policy_set import LoadedPolicySet
from warden.authz.types import AuthzRequest, Decision, EntityRef
from warden.behaviour import BehaviourMonitor, Observation
from warden.core.clock import Clock
from warden.core.ids import new_decision_id
from warden.core.masking import mask
from warden.core.model import Agent, ApprovalRequest, EnforcementMode
from warden.errors import DPoPProofError, PolicyEvaluationError, TokenInvalidError, WardenError
from warden.service.approvals import ApprovalService
from warden.service.auditing import Auditor
from warden.service.modes import ModeService
from warden.service.state import HotState, LiveTask
from warden.service.tasks import TaskService

AGENT_SUBJECT_TYPE = "agent"
STEP_UP_POLICY = "warden:behaviour-step-up"
_NO_GRANT: dict[str, Any] = {"granted": False}


@dataclass(frozen=True, slots=True)
class Outcome:
    """One decision as the API returns it."""

    allowed: bool
    decision_id: str
    context: dict[str, Any]


class DecisionService:
    def __init__(
        self,
        pdp: PolicyDecisionPoint,
        tasks: TaskService,
        state: HotState,
        modes: ModeService,
        auditor: Auditor,
        clock: Clock,
        approvals: ApprovalService,
        behaviour: BehaviourMonitor,
    ) -> None:
        self._pdp = pdp
        self._tasks = tasks
        self._state = state
        self._modes = modes
        self._audit = auditor
        self._clock = clock
        self._approvals = approvals
        self._behaviour = behaviour
        # (policy revision, do its policies read context.warden.behaviour?) — facts are only
        # encoded into the Cedar context when some policy reads them: they cost Cedar time
        self._facts_for: tuple[str | None, bool] = (None, True)

    def policies_loaded(self, lps: LoadedPolicySet) -> None:
        """Note whether the new policy set reads behaviour facts (called off the hot path)."""
        self._facts_for = (lps.revision, _mentions(lps, "behaviour"))

    def evaluate(self, ev: EvaluationInput, *, request_id: str | None = None) -> Outcome:
        decision_id = new_decision_id()
        now = self._clock.now()
        if ev.subject.type == AGENT_SUBJECT_TYPE:
            return self._evaluate_agent(ev, decision_id, now, request_id)
        try:
            req = to_cedar(ev, warden_context={"now": int(now)})
            decision = self._pdp.evaluate(req)
        except (PolicyEvaluationError, WardenError) as exc:
            return self._refuse(ev, decision_id, "evaluation_error", exc.message, request_id)
        return self._finish(ev, req, decision, decision_id, request_id, agent=None, task_id=None)

    def search(self, query: SearchInput) -> list[dict[str, str]]:
        """AuthZEN search over the entity store (plain subjects; agent credentials are not used)."""
        return run_search(self._pdp, query, warden_context={"now": int(self._clock.now())})

    # -- agent mode ---------------------------------------------------------------------------
    def _evaluate_agent(
        self, ev: EvaluationInput, decision_id: str, now: float, request_id: str | None
    ) -> Outcome:
        token = (ev.subject.properties or {}).get("token")
        if not isinstance(token, str) or not token:
            return self._refuse(
                ev,
                decision_id,
                "missing_credential",
                "subject.properties.token is missing",
                request_id,
            )
        try:
            cred = self._tasks.verify_signature(token)
        except TokenInvalidError as exc:
            return self._refuse(
                ev, decision_id, "invalid_credential", f"{exc.code}: {exc.message}", request_id
            )
        try:
            live = self._tasks.check_live(cred)
        except TokenInvalidError as exc:
            # signed by us, so the claims are trustworthy enough to attribute the deny
            known = self._state.agents_by_spiffe.get(cred.subject)
            return self._refuse(
                ev,
                decision_id,
                "invalid_credential",
                f"{exc.code}: {exc.message}",
                request_id,
                agent=known.name if known else None,
                task_id=cred.task_id,
                jti=cred.jti,
            )
        agent, task = live.agent, live.task
        chain = list(task.chain)
        if ev.subject.id != cred.subject:
            return self._refuse(
                ev,
                decision_id,
                "invalid_credential",
                "subject.id does not match the credential subject",
                request_id,
                agent=agent.name,
                task_id=task.id,
                jti=cred.jti,
                chain=chain,
            )
        if cred.jkt is not None:
            http = (ev.context or {}).get("http")
            method = http.get("method") if isinstance(http, dict) else None
            uri = http.get("uri") if isinstance(http, dict) else None
            try:
                if not isinstance(method, str) or not isinstance(uri, str):
                    raise DPoPProofError(
                        "context.http.method and context.http.uri are required",
                        detail={"reason": "missing_request"},
                    )
                self._tasks.verify_proof(
                    cred,
                    (ev.subject.properties or {}).get("dpop"),
                    method=method,
                    uri=uri,
                    token=token,
                    # a listing runs nothing and decides once per item of one request
                    spend=not _is_listing(ev.context),
                )
            except DPoPProofError as exc:
                return self._refuse(
                    ev,
                    decision_id,
                    "invalid_dpop_proof",
                    f"{exc.detail.get('reason', 'invalid')}: {exc.message}",
                    request_id,
                    agent=agent.name,
                    task_id=task.id,
                    jti=cred.jti,
                    chain=chain,
                )
        warden_ctx = {
            "now": int(now),
            "task": {
                "id": task.id,
                "purpose": task.purpose,
                "category": task.category,
                "age": int(now - task.created_at),
            },
            "scope": sorted(cred.scope),
            "chain": chain,
            "depth": task.depth,
            "owner": agent.owner,
            "approval": {"granted": False},
            "behaviour": {},
            "attestation": task.attestation,
        }
        if task.on_behalf_of:
            warden_ctx["task"]["on_behalf_of"] = task.on_behalf_of  # type: ignore[index]
        if task.manifest is not None:
            warden_ctx["manifest"] = task.manifest
        try:
            req = to_cedar(ev, warden_context=warden_ctx)
        except WardenError as exc:
            return self._refuse(
                ev,
                decision_id,
                "evaluation_error",
                exc.message,
                request_id,
                agent=agent.name,
                task_id=task.id,
                jti=cred.jti,
                chain=chain,
            )
        if req.action not in cred.scope:
            self._behaviour.refused(
                agent, "out_of_scope", req.action, now, task_id=task.id, decision_id=decision_id
            )
            return self._refuse(
                ev,
                decision_id,
                "out_of_scope",
                f"action `{req.action}` is outside the task scope",
                request_id,
                agent=agent.name,
                task_id=task.id,
                jti=cred.jti,
                action=req.action,
                chain=chain,
            )
        listing = _is_listing(ev.context)
        if listing:
            obs = self._behaviour.peek(agent, now)
        else:
            obs = self._behaviour.observe(
                agent,
                task.id,
                task.category,
                req.action,
                ev.context,
                now,
                decision_id=decision_id,
                parent=self._parent_of(task),
            )
        if obs.refusal is not None:
            if obs.refusal != "agent_suspended" and not listing:
                self._behaviour.outcome(agent, req.action, False, ev.context, now, task_id=task.id)
            return self._refuse(
                ev,
                decision_id,
                obs.refusal,
                obs.detail,
                request_id,
                agent=agent.name,
                task_id=task.id,
                jti=cred.jti,
                action=req.action,
            )
        # ``req.context["warden"]`` is this very dict: what is set below reaches Cedar
        revision, wanted = self._facts_for
        if wanted or revision != self._pdp.revision:
            warden_ctx["behaviour"] = obs.facts
        digest: str | None = None
        grant: ApprovalRequest | None = None
        if not listing and self._approvals.has_grants(agent.name):
            digest = _digest(agent, task, req, ev)
            grant = self._approvals.grant_for(digest, now) if digest else None
            if grant is not None:
                warden_ctx["approval"] = {"granted": True, "request_id": grant.id}
        req = replace(
            req,
            principal=EntityRef("Agent", agent.spiffe_id),
            principal_attrs=_agent_attrs(agent),
            principal_parents=tuple(EntityRef("Group", g) for g in agent.groups),
        )
        try:
            decision = self._pdp.evaluate(req)
        except WardenError as exc:
            return self._refuse(
                ev,
                decision_id,
                "evaluation_error",
                exc.message,
                request_id,
                agent=agent.name,
                task_id=task.id,
                jti=cred.jti,
                chain=chain,
            )
        step = _StepUp(task, obs, grant, digest, now, listing)
        return self._finish(
            ev,
            req,
            decision,
            decision_id,
            request_id,
            agent=agent,
            task_id=task.id,
            jti=cred.jti,
            chain=chain,
            step=step,
        )

    def _parent_of(self, task: LiveTask) -> tuple[Agent, str] | None:
        if task.parent_id is None:
            return None
        parent = self._state.tasks.get(task.parent_id)
        owner = self._state.agents_by_name.get(parent.agent_name) if parent else None
        return (owner, task.parent_id) if owner is not None else None

    # -- step-up ------------------------------------------------------------------------------
    def _step_up(
        self,
        ev: EvaluationInput,
        req: AuthzRequest,
        decision: Decision,
        decision_id: str,
        agent: Agent,
        step: _StepUp,
    ) -> tuple[bool, dict[str, Any], dict[str, Any] | None]:
        """(allowed, response context members, approval audit) for a Cedar decision."""
        allowed = decision.allowed
        grant = step.grant
        if grant is not None:
            if not allowed:
                return False, {}, {"granted": False, "request_id": grant.id, "outcome": "denied"}
            ctx: dict[str, Any]
            if self._approvals.spend(grant, decision_id, step.now):
                ctx = {"approval": {"granted": True, "request_id": grant.id}}
                return True, ctx, {"granted": True, "request_id": grant.id}
            ctx = {
                "reason": "approval_used",
                "approval": {"granted": False, "request_id": grant.id},
            }
            return False, ctx, {"granted": False, "request_id": grant.id, "outcome": "used"}
        requirement: Requirement | None = None
        if not allowed:
            requirement = requirement_from(
                decision.reasons, decision.annotations, errors=decision.errors
            )
        elif step.obs.step_up and step.obs.high_risk:
            requirement = Requirement((OWNER_LEVEL,), None, False, (STEP_UP_POLICY,), "behaviour")
        if requirement is None:
            return allowed, {}, None
        mode, _ = self._modes.mode_for(agent)
        if mode is EnforcementMode.MONITOR:
            return False, {}, {"required": True, "policies": list(requirement.policies)}
        if step.listing:  # a listing makes no call: there is nothing to approve yet
            listed = {
                "required": True,
                "outcome": "listing",
                "policies": list(requirement.policies),
            }
            return False, {"reason": "approval_required"}, listed
        digest = step.digest or _digest(agent, step.task, req, ev)
        if digest is None:
            return False, {}, {"required": True, "outcome": "undigestable"}
        request, outcome = self._approvals.open(
            agent=agent,
            task=step.task,
            action=req.action,
            resource=(req.resource.type, req.resource.id),
            arguments=(ev.context or {}).get("arguments"),
            digest=digest,
            requirement=requirement,
            decision_id=decision_id,
            now=step.now,
        )
        audit: dict[str, Any] = {
            "required": True,
            "outcome": outcome,
            "policies": list(requirement.policies),
        }
        if request is None:
            return False, {"reason": f"approval_{outcome}"}, audit
        audit["request_id"] = request.id
        opened = self._approvals.decision_context(request, outcome, step.now)
        opened["reason"] = "approval_denied" if outcome == "denied" else "approval_required"
        if outcome == "denied":
            opened.pop("access_request", None)
        return False, opened, audit

    # -- results ------------------------------------------------------------------------------
    def _finish(
        self,
        ev: EvaluationInput,
        req: AuthzRequest,
        decision: Decision,
        decision_id: str,
        request_id: str | None,
        *,
        agent: Agent | None,
        task_id: str | None,
        jti: str | None = None,
        chain: list[str] | None = None,
        step: _StepUp | None = None,
    ) -> Outcome:
        allowed = decision.allowed
        context: dict[str, Any] = {"decision_id": decision_id, "reasons": list(decision.reasons)}
        monitor: dict[str, Any] | None = None
        approval: dict[str, Any] | None = None
        if decision.monitored:
            monitor = {"by": "policy", "would_deny": True, "policies": list(decision.monitored)}
        if agent is not None and step is not None:
            allowed, extra, approval = self._step_up(ev, req, decision, decision_id, agent, step)
            context.update(extra)
            if approval is not None and STEP_UP_POLICY in approval.get("policies", ()):
                context["reasons"] = [STEP_UP_POLICY]
        if not allowed and agent is not None:
            mode, by = self._modes.mode_for(agent)
            if mode is EnforcementMode.MONITOR:
                allowed = True
                monitor = {"by": by, "would_deny": True, "policies": list(decision.reasons)}
                if approval is not None and approval.get("required"):
                    monitor["would_require_approval"] = True
        if monitor is not None:
            context["monitor"] = monitor
        if decision.errors:
            context["errors"] = len(decision.errors)
        self._audit.record(
            "authz.decision",
            agent.spiffe_id if agent else f"{ev.subject.type}:{ev.subject.id}",
            {
                "decision": "allow" if allowed else "deny",
                "subject": {"type": req.principal.type, "id": req.principal.id},
                "action": req.action,
                "resource": {"type": req.resource.type, "id": req.resource.id},
                "reasons": list(decision.reasons),
                "errors": list(decision.errors),
                "policy_revision": decision.policy_revision,
                "monitor": monitor,
                "context": _pep_context(ev.context),
                "request_id": request_id,
                "jti": jti,
                **({"chain": chain, "depth": len(chain) - 1} if chain else {}),
                "approval": approval,
                "behaviour": step.obs.facts if step is not None else None,
            },
            agent=agent.name if agent else None,
            task_id=task_id,
            decision_id=decision_id,
        )
        if agent is not None and step is not None and not step.listing:
            self._behaviour.outcome(
                agent,
                req.action,
                allowed,
                ev.context,
                step.now,
                task_id=task_id,
                decision_id=decision_id,
            )
        return Outcome(allowed, decision_id, context)

    def _refuse(
        self,
        ev: EvaluationInput,
        decision_id: str,
        reason: str,
        detail: str,
        request_id: str | None,
        *,
        agent: str | None = None,
        task_id: str | None = None,
        jti: str | None = None,
        action: str | None = None,
        chain: list[str] | None = None,
    ) -> Outcome:
        """A deny before (or instead of) Cedar: opaque reason out, precise reason in the log."""
        self._audit.record(
            "authz.decision",
            f"{ev.subject.type}:{ev.subject.id}"[:300],
            {
                "decision": "deny",
                "subject": {"type": ev.subject.type, "id": ev.subject.id[:300]},
                "action": (action or ev.action.name)[:300],
                "resource": {"type": ev.resource.type, "id": ev.resource.id[:300]},
                "reason": reason,
                "detail": detail,
                "context": _pep_context(ev.context),
                "request_id": request_id,
                "jti": jti,
                **({"chain": chain, "depth": len(chain) - 1} if chain else {}),
            },
            agent=agent,
            task_id=task_id,
            decision_id=decision_id,
        )
        return Outcome(False, decision_id, {"decision_id": decision_id, "reason": reason})


@dataclass(slots=True)  # not frozen: built on every agent decision, frozen init is slower
class _StepUp:
    """What the agent path learned before Cedar, for the step-up decision after it."""

    task: LiveTask
    obs: Observation
    grant: ApprovalRequest | None
    digest: str | None
    now: float
    listing: bool  # the PEP only asks whether to show the item (``context.listing``)


def _digest(agent: Agent, task: LiveTask, req: AuthzRequest, ev: EvaluationInput) -> str | None:
    """The approval digest of this call, or None when its arguments cannot be hashed."""
    try:
        return action_digest(
            agent.spiffe_id,
            task.id,
            req.action,
            req.resource.type,
            req.resource.id,
            (ev.context or {}).get("arguments"),
        )
    except (TypeError, ValueError):
        return None


def _is_listing(context: Mapping[str, Any] | None) -> bool:
    return context is not None and context.get("listing") is True


def _mentions(lps: LoadedPolicySet, word: str) -> bool:
    """Does any policy file of the set contain ``word``? (True when a file cannot be read.)"""
    for name in lps.files:
        if not name.endswith(".cedar"):
            continue
        try:
            if word in (Path(lps.path) / name).read_text(errors="replace"):
                return True
        except OSError:
            return True
    return False


def _agent_attrs(agent: Agent) -> Mapping[str, Any]:
    return {
        "name": agent.name,
        "owner": agent.owner,
        "risk_tier": agent.risk_tier.value,
        "purpose": agent.purpose,
        "status": agent.status.value,
        "trust_domain": agent.trust_domain,
    }


def _pep_context(context: Mapping[str, Any] | None) -> Any:
    if not context:
        return {}
    return mask({k: v for k, v in context.items() if k != "warden"})
