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
DPoP proof without spending it (the PEP decides once per listed item for one request; the MCP
proxy refuses a replayed request itself). The flag never turns a deny into an allow.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from warden.approvals import OWNER_LEVEL, Requirement, action_digest, requirement_from
from warden.authz.authzen import EvaluationInput, SearchInput, run_search, to_cedar
from warden.authz.pdp import PolicyDecisionPoint
from warden.authz.policy_set import LoadedPolicySet
from warden.authz.principal import AGENT_SUBJECT_TYPE, AgentRequest, classify
from warden.authz.recording import request_record
from warden.authz.types import AuthzRequest, Decision, EntityRef
from warden.behaviour import BehaviourMonitor, Observation
from warden.core.clock import Clock
from warden.core.ids import new_decision_id
from warden.core.masking import mask
from warden.core.model import Agent, ApprovalRequest, EnforcementMode
from warden.core.names import is_reserved_type
from warden.core.reasons import POLICY, decision_reason
from warden.core.scope import effective_scope
from warden.errors import (
    DPoPProofError,
    ReservedEntityTypeError,
    TokenInvalidError,
    ToolMismatchError,
    WardenError,
)
from warden.service.approvals import ApprovalService
from warden.service.auditing import Auditor
from warden.service.credentials import CredentialService
from warden.service.freshness import Freshness
from warden.service.liveness import Liveness
from warden.service.modes import ModeService
from warden.service.replay import policy_outcome
from warden.service.state import HotState, LiveTask
from warden.tokens.verifier import VerifiedCredential

__all__ = [
    "AGENT_SUBJECT_TYPE",
    "STEP_UP_POLICY",
    "DecisionContext",
    "DecisionService",
    "Outcome",
    "Refusal",
]

STEP_UP_POLICY = "warden:behaviour-step-up"
_NOT_COUNTED = frozenset({"agent_suspended", "counters_unavailable"})


@dataclass(frozen=True, slots=True)
class Outcome:
    """One decision as the API returns it."""

    allowed: bool
    decision_id: str
    context: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a check stopped the decision: ``reason`` goes to the caller, ``detail`` to the log."""

    reason: str
    detail: str


@dataclass(slots=True)  # not frozen: built on every decision and enriched by each check
class DecisionContext:
    """Everything one decision has learned so far. Each check reads it and either returns a
    ``Refusal`` or fills in what it established; a refusal is recorded from whatever is known."""

    ev: EvaluationInput
    decision_id: str
    now: float
    request_id: str | None
    token: str | None = None  # agent requests: the task credential and its DPoP proof
    proof: Any = None
    cred: VerifiedCredential | None = None
    attributed: str | None = None  # the agent a refused credential names, before it is live
    agent: Agent | None = None
    task: LiveTask | None = None
    chain: list[str] | None = None
    scope: frozenset[str] = frozenset()  # effective: credential scope ∩ current entitlements
    warden: dict[str, Any] | None = None  # context.warden, the server-derived facts
    req: AuthzRequest | None = None
    listing: bool = False  # the PEP only asks whether to show the item
    obs: Observation | None = None
    grant: ApprovalRequest | None = None
    digest: str | None = None
    decision: Decision | None = None


Check = Callable[[DecisionContext], Refusal | None]


class DecisionService:
    def __init__(
        self,
        pdp: PolicyDecisionPoint,
        credentials: CredentialService,
        liveness: Liveness,
        state: HotState,
        modes: ModeService,
        auditor: Auditor,
        clock: Clock,
        approvals: ApprovalService,
        behaviour: BehaviourMonitor,
        *,
        freshness: Freshness | None = None,
    ) -> None:
        self._pdp = pdp
        self._credentials = credentials
        self._liveness = liveness
        self._state = state
        self._modes = modes
        self._audit = auditor
        self._clock = clock
        self._approvals = approvals
        self._behaviour = behaviour
        self._freshness = freshness
        # (policy revision, do its policies read context.warden.behaviour?) — facts are only
        # encoded into the Cedar context when some policy reads them: they cost Cedar time
        self._facts_for: tuple[str | None, bool] = (None, True)
        self._plain_checks: tuple[Check, ...] = (self._plain_request, self._plain_cedar)
        self._agent_checks: tuple[Check, ...] = (
            self._fresh,
            self._authenticate,
            self._live,
            self._bind,
            self._agent_request,
            self._scope,
            self._behaviour_check,
            self._approvals_check,
            self._agent_cedar,
        )

    def policies_loaded(self, lps: LoadedPolicySet) -> None:
        """Note whether the new policy set reads behaviour facts (called off the hot path)."""
        self._facts_for = (lps.revision, _mentions(lps, "behaviour"))

    def evaluate(self, ev: EvaluationInput, *, request_id: str | None = None) -> Outcome:
        """Decide one request. Raises ``ReservedEntityTypeError`` (a 400) when the caller named
        a type or context key only Warden may produce; every other problem is a deny."""
        kind = classify(ev)
        ctx = DecisionContext(ev, new_decision_id(), self._clock.now(), request_id)
        checks = self._agent_checks if isinstance(kind, AgentRequest) else self._plain_checks
        if isinstance(kind, AgentRequest):
            ctx.token, ctx.proof = kind.token, kind.proof
        for check in checks:
            refusal = check(ctx)
            if refusal is not None:
                return self._refuse(ctx, refusal)
        return self._finish(ctx)

    def search(self, query: SearchInput) -> list[dict[str, str]]:
        """AuthZEN search over the entity store (plain subjects; agent credentials are not used)."""
        for name, where in (
            (query.subject_type, "subject.type"),
            (query.resource_type, "resource.type"),
        ):
            if is_reserved_type(name):
                raise ReservedEntityTypeError(
                    f"`{where}` `{name[:60]}` is a type only Warden may produce",
                    detail={"field": where},
                )
        return run_search(self._pdp, query, warden_context={"now": int(self._clock.now())})

    # -- the plain path: the principal is what the PEP named -----------------------------------
    def _plain_request(self, ctx: DecisionContext) -> Refusal | None:
        try:
            ctx.req = to_cedar(ctx.ev, warden_context={"now": int(ctx.now)})
        except WardenError as exc:
            return _refusal_from(exc)
        return None

    def _plain_cedar(self, ctx: DecisionContext) -> Refusal | None:
        assert ctx.req is not None
        try:
            ctx.decision = self._pdp.evaluate(ctx.req)
        except WardenError as exc:
            return Refusal("evaluation_error", exc.message)
        return None

    # -- the agent path: fresh → authenticate → live → bind → scope → behaviour → approvals →
    # Cedar ----------------------------------------------------------------------------------
    def _fresh(self, ctx: DecisionContext) -> Refusal | None:
        """A replica whose view of revocations is past the staleness bound allows nothing in
        agent mode: it may not know what was revoked (ADR 0092)."""
        age = self._freshness.stale_for() if self._freshness is not None else None
        if age is None:
            return None
        assert self._freshness is not None
        return Refusal("state_stale", self._freshness.describe(age))

    def _authenticate(self, ctx: DecisionContext) -> Refusal | None:
        if ctx.token is None:
            return Refusal("missing_credential", "subject.properties.token is missing")
        try:
            ctx.cred = self._credentials.verify_signature(ctx.token)
        except TokenInvalidError as exc:
            return Refusal("invalid_credential", f"{exc.code}: {exc.message}")
        return None

    def _live(self, ctx: DecisionContext) -> Refusal | None:
        cred = ctx.cred
        assert cred is not None
        try:
            live = self._liveness.check(cred)
        except TokenInvalidError as exc:
            # signed by us, so the claims are trustworthy enough to attribute the deny
            known = self._state.agents_by_spiffe.get(cred.subject)
            ctx.attributed = known.name if known else None
            return Refusal("invalid_credential", f"{exc.code}: {exc.message}")
        ctx.agent, ctx.task = live.agent, live.task
        ctx.chain = list(live.task.chain)
        if ctx.ev.subject.id != cred.subject:
            return Refusal("invalid_credential", "subject.id does not match the credential subject")
        # what the credential says, bounded by what the agent is entitled to now (ADR 0081)
        ctx.scope = effective_scope(cred.scope, live.agent.entitlements)
        return None

    def _bind(self, ctx: DecisionContext) -> Refusal | None:
        cred = ctx.cred
        assert cred is not None and ctx.token is not None
        if cred.jkt is None:
            return None
        http = ctx.ev.context.get("http")
        method = http.get("method") if isinstance(http, dict) else None
        uri = http.get("uri") if isinstance(http, dict) else None
        try:
            if not isinstance(method, str) or not isinstance(uri, str):
                raise DPoPProofError(
                    "context.http.method and context.http.uri are required",
                    detail={"reason": "missing_request"},
                )
            self._credentials.verify_proof(
                cred,
                ctx.proof,
                method=method,
                uri=uri,
                token=ctx.token,
                # a listing runs nothing and decides once per item of one request
                spend=not _is_listing(ctx.ev),
            )
        except DPoPProofError as exc:
            return Refusal(
                "invalid_dpop_proof", f"{exc.detail.get('reason', 'invalid')}: {exc.message}"
            )
        return None

    def _agent_request(self, ctx: DecisionContext) -> Refusal | None:
        agent, task, cred = ctx.agent, ctx.task, ctx.cred
        assert agent is not None and task is not None and cred is not None
        now = ctx.now
        ctx.warden = {
            "now": int(now),
            "task": {
                "id": task.id,
                "purpose": task.purpose,
                "category": task.category,
                "age": int(now - task.created_at),
            },
            "scope": sorted(ctx.scope),
            "chain": ctx.chain,
            "depth": task.depth,
            "owner": agent.owner,
            "approval": {"granted": False},
            "behaviour": {},
            "attestation": task.attestation,
        }
        if task.on_behalf_of:
            ctx.warden["task"]["on_behalf_of"] = task.on_behalf_of
        if task.manifest is not None:
            ctx.warden["manifest"] = task.manifest  # the verified agent manifest (issue 14)
        try:
            ctx.req = to_cedar(ctx.ev, warden_context=ctx.warden)
        except WardenError as exc:
            return _refusal_from(exc)
        # a listing only asks whether to show an item; see ``_is_listing``
        ctx.listing = _is_listing(ctx.ev)
        return None

    def _scope(self, ctx: DecisionContext) -> Refusal | None:
        req, agent, task = ctx.req, ctx.agent, ctx.task
        assert req is not None and agent is not None and task is not None
        # a tool resource names the same tool as the action (``to_cedar``), so this one test
        # covers both; any other resource is the system the action acts on
        if req.action in ctx.scope:
            return None
        if not ctx.listing:  # hiding a tool from a listing is not a refused call
            self._behaviour.refused(
                agent,
                "out_of_scope",
                req.action,
                ctx.now,
                task_id=task.id,
                decision_id=ctx.decision_id,
            )
        return Refusal("out_of_scope", f"action `{req.action}` is outside the task scope")

    def _behaviour_check(self, ctx: DecisionContext) -> Refusal | None:
        req, agent, task = ctx.req, ctx.agent, ctx.task
        assert req is not None and agent is not None and task is not None
        ev, now = ctx.ev, ctx.now
        if ctx.listing:
            obs = self._behaviour.peek(agent, now)
        else:
            obs = self._behaviour.observe(
                agent,
                task.id,
                task.category,
                req.action,
                ev.context,
                now,
                decision_id=ctx.decision_id,
                parent=self._parent_of(task),
            )
        ctx.obs = obs
        if obs.refusal is not None:
            # a suspension, or counters nobody could reach, is no deny of the agent's doing
            if obs.refusal not in _NOT_COUNTED and not ctx.listing:
                self._behaviour.outcome(agent, req.action, False, ev.context, now, task_id=task.id)
            return Refusal(obs.refusal, obs.detail)
        # ``req.context["warden"]`` is this very dict: what is set below reaches Cedar
        revision, wanted = self._facts_for
        if wanted or revision != self._pdp.revision:
            assert ctx.warden is not None
            ctx.warden["behaviour"] = obs.facts
        return None

    def _approvals_check(self, ctx: DecisionContext) -> Refusal | None:
        req, agent, task = ctx.req, ctx.agent, ctx.task
        assert req is not None and agent is not None and task is not None
        if not ctx.listing and self._approvals.has_grants(agent.name):
            ctx.digest = _digest(agent, task, req, ctx.ev)
            ctx.grant = self._approvals.grant_for(ctx.digest, ctx.now) if ctx.digest else None
            if ctx.grant is not None and ctx.warden is not None:
                ctx.warden["approval"] = {"granted": True, "request_id": ctx.grant.id}
        return None

    def _agent_cedar(self, ctx: DecisionContext) -> Refusal | None:
        req, agent = ctx.req, ctx.agent
        assert req is not None and agent is not None
        # the principal is the verified agent, never what the PEP named (ADR 0080)
        ctx.req = replace(
            req,
            principal=EntityRef("Agent", agent.spiffe_id),
            principal_attrs=_agent_attrs(agent),
            principal_parents=tuple(EntityRef("Group", g) for g in agent.groups),
        )
        try:
            ctx.decision = self._pdp.evaluate(ctx.req)
        except WardenError as exc:
            return Refusal("evaluation_error", exc.message)
        return None

    def _parent_of(self, task: LiveTask) -> tuple[Agent, str] | None:
        if task.parent_id is None:
            return None
        parent = self._state.tasks.get(task.parent_id)
        owner = self._state.agents_by_name.get(parent.agent_name) if parent else None
        return (owner, task.parent_id) if owner is not None else None

    # -- step-up ------------------------------------------------------------------------------
    def _step_up(self, ctx: DecisionContext) -> tuple[bool, dict[str, Any], dict[str, Any] | None]:
        """(allowed, response context members, approval audit) for a Cedar decision."""
        decision, agent, task, obs, req, ev = (
            ctx.decision,
            ctx.agent,
            ctx.task,
            ctx.obs,
            ctx.req,
            ctx.ev,
        )
        assert decision is not None and agent is not None and task is not None
        assert obs is not None and req is not None
        allowed = decision.allowed
        grant = ctx.grant
        if grant is not None:
            if not allowed:
                return False, {}, {"granted": False, "request_id": grant.id, "outcome": "denied"}
            extra: dict[str, Any]
            if self._approvals.spend(grant, ctx.decision_id, ctx.now):
                extra = {"approval": {"granted": True, "request_id": grant.id}}
                return True, extra, {"granted": True, "request_id": grant.id}
            extra = {
                "reason": "approval_used",
                "approval": {"granted": False, "request_id": grant.id},
            }
            return False, extra, {"granted": False, "request_id": grant.id, "outcome": "used"}
        requirement: Requirement | None = None
        if not allowed:
            requirement = requirement_from(
                decision.reasons, decision.annotations, errors=decision.errors
            )
        elif obs.step_up and obs.high_risk:
            requirement = Requirement((OWNER_LEVEL,), None, False, (STEP_UP_POLICY,), "behaviour")
        if requirement is None:
            return allowed, {}, None
        mode, _ = self._modes.mode_for(agent)
        if mode is EnforcementMode.MONITOR:
            return False, {}, {"required": True, "policies": list(requirement.policies)}
        if ctx.listing:  # a listing makes no call: there is nothing to approve yet
            listed = {
                "required": True,
                "outcome": "listing",
                "policies": list(requirement.policies),
            }
            return False, {"reason": "approval_required"}, listed
        digest = ctx.digest or _digest(agent, task, req, ev)
        if digest is None:
            return False, {}, {"required": True, "outcome": "undigestable"}
        request, outcome = self._approvals.open(
            agent=agent,
            task=task,
            action=req.action,
            resource=(req.resource.type, req.resource.id),
            arguments=ev.context.get("arguments"),
            digest=digest,
            requirement=requirement,
            decision_id=ctx.decision_id,
            now=ctx.now,
        )
        audit: dict[str, Any] = {
            "required": True,
            "outcome": outcome,
            "policies": list(requirement.policies),
        }
        if request is None:
            return False, {"reason": f"approval_{outcome}"}, audit
        audit["request_id"] = request.id
        opened = self._approvals.decision_context(request, outcome, ctx.now)
        opened["reason"] = "approval_denied" if outcome == "denied" else "approval_required"
        if outcome == "denied":
            opened.pop("access_request", None)
        return False, opened, audit

    # -- results: modes → record --------------------------------------------------------------
    def _finish(self, ctx: DecisionContext) -> Outcome:
        ev, req, decision, agent = ctx.ev, ctx.req, ctx.decision, ctx.agent
        assert req is not None and decision is not None
        decision_id = ctx.decision_id
        allowed = decision.allowed
        context: dict[str, Any] = {
            "decision_id": decision_id,
            "reason": POLICY,  # set below, once modes and step-up have spoken
            "reasons": list(decision.reasons),
        }
        monitor: dict[str, Any] | None = None
        approval: dict[str, Any] | None = None
        if decision.monitored:
            monitor = {"by": "policy", "would_deny": True, "policies": list(decision.monitored)}
        if agent is not None:
            allowed, extra, approval = self._step_up(ctx)
            context.update(extra)
            if approval is not None and STEP_UP_POLICY in approval.get("policies", ()):
                context["reasons"] = [STEP_UP_POLICY]
            if not allowed:
                mode, by = self._modes.mode_for(agent)
                if mode is EnforcementMode.MONITOR:
                    allowed = True
                    monitor = {"by": by, "would_deny": True, "policies": list(decision.reasons)}
                    if approval is not None and approval.get("required"):
                        monitor["would_require_approval"] = True
        context["reason"] = decision_reason(allowed, approval)
        if monitor is not None:  # a copy: what enforcement would have said is not audited here
            context["monitor"] = {**monitor, "reason": decision_reason(False, approval)}
        if decision.errors:
            context["errors"] = len(decision.errors)
        chain = ctx.chain
        task_id = ctx.task.id if ctx.task is not None else None
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
                # what a replay needs (service/replay.py): the request Cedar evaluated, secrets
                # as digests, and the policy-level outcome before modes and grants
                "cedar": request_record(req),
                "policy_outcome": policy_outcome(decision),
                "monitor": monitor,
                "context": _pep_context(ev.context),
                "request_id": ctx.request_id,
                "jti": ctx.cred.jti if ctx.cred is not None else None,
                **({"chain": chain, "depth": len(chain) - 1} if chain else {}),
                "approval": approval,
                "behaviour": ctx.obs.facts if ctx.obs is not None else None,
                **({"listing": True} if ctx.listing else {}),
            },
            agent=agent.name if agent else None,
            task_id=task_id,
            decision_id=decision_id,
        )
        if agent is not None and not ctx.listing:
            self._behaviour.outcome(
                agent,
                req.action,
                allowed,
                ev.context,
                ctx.now,
                task_id=task_id,
                decision_id=decision_id,
                refund=ctx.obs.refund if ctx.obs is not None else None,
            )
        return Outcome(allowed, decision_id, context)

    def _refuse(self, ctx: DecisionContext, refusal: Refusal) -> Outcome:
        """A deny before (or instead of) Cedar, built from what the pipeline knew so far:
        the opaque reason out, the precise one in the log."""
        ev, cred = ctx.ev, ctx.cred
        agent = ctx.agent.name if ctx.agent is not None else ctx.attributed
        task_id = ctx.task.id if ctx.task is not None else (cred.task_id if cred else None)
        action = ctx.req.action if ctx.req is not None else ev.action.name
        chain = ctx.chain
        self._audit.record(
            "authz.decision",
            f"{ev.subject.type}:{ev.subject.id}"[:300],
            {
                "decision": "deny",
                "subject": {"type": ev.subject.type, "id": ev.subject.id[:300]},
                "action": action[:300],
                "resource": {"type": ev.resource.type, "id": ev.resource.id[:300]},
                "reason": refusal.reason,
                "detail": refusal.detail,
                "policy_revision": self._pdp.revision,
                "context": _pep_context(ev.context),
                "request_id": ctx.request_id,
                "jti": cred.jti if cred is not None else None,
                **({"chain": chain, "depth": len(chain) - 1} if chain else {}),
                **({"listing": True} if ctx.listing else {}),
            },
            agent=agent,
            task_id=task_id,
            decision_id=ctx.decision_id,
        )
        context = {"decision_id": ctx.decision_id, "reason": refusal.reason, "reasons": []}
        return Outcome(False, ctx.decision_id, context)


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


def _is_listing(ev: EvaluationInput) -> bool:
    """A listing asks whether to *show* an item, so it cannot know a call's arguments: a
    request carrying ``context.arguments`` is a call whatever ``context.listing`` says."""
    context = ev.context
    return context.get("listing") is True and "arguments" not in context


def _refusal_from(exc: WardenError) -> Refusal:
    """The refusal for a request that could not be mapped to Cedar."""
    reason = exc.code if isinstance(exc, ToolMismatchError) else "evaluation_error"
    return Refusal(reason, exc.message)


def _mentions(lps: LoadedPolicySet, word: str) -> bool:
    """Does any policy file of the set contain ``word``?"""
    return lps.mentions(word)


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
