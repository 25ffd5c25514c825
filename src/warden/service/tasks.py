"""The task lifecycle: starting a task (its first credential), ending it with its subtree, expiry.

A task is one piece of work an attested agent does for a purpose, with a scope granted from its
entitlements and a lifetime; its credentials (``service.credentials``) live no longer than it.

**Starting** (``attest`` then ``start``) runs as named steps, each refusal audited as
``task.refused`` with how the identity was proven:

1. ``attest`` — the subject token proves a workload identity (``attestation``);
2. ``start`` — the requested audiences are ones this Warden (or the parent credential) knows;
   then admission: the identity resolves to a registered agent (``service.entries``), the
   agent and its owner are active, something was asked for, a delegation stays within its
   parent (``service.delegation``), the agent's entitlements grant some of it, a DPoP binding
   is there when the agent's risk tier needs one, the agent manifest matches
   (``service.manifests``), and a join token is spent (the last check before any write);
3. the task is built (lifetime bounded by the settings and by a parent), its first credential
   minted, and the task, the credential and their two audit records commit together (ADR 0090).

**Ending** (``end``/``end_tree``) ends a task and its delegated subtree, revokes their
credentials and tells listeners (leases); ``end_all_for_agent`` is the kill switch's cascade;
``sweep_expired`` ends what outlived its lifetime.

The OAuth token request these come from (RFC 8693 token exchange, RFC 9396
``authorization_details``, DPoP) is read in the API layer (``api.oauth_requests``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from warden.attestation.base import AttestorRegistry, Channel, WorkloadIdentity
from warden.core.clock import Clock
from warden.core.ids import new_id
from warden.core.model import (
    Agent,
    AgentStatus,
    Credential,
    HumanStatus,
    Task,
    TaskStatus,
)
from warden.core.ports import Store
from warden.core.scope import grant
from warden.errors import AttestationError, ConflictError, NotFoundError, OAuthError
from warden.service.auditing import Auditor
from warden.service.credentials import CredentialService, Issued, Parent
from warden.service.delegation import DEFAULT_MAX_DEPTH, check_delegation
from warden.service.entries import EntryService, Resolution
from warden.service.manifests import ManifestMismatchError, ManifestService
from warden.service.state import HotState
from warden.tokens.dpop import DPoPProof

log = logging.getLogger("warden.tasks")

JOIN_TOKEN_METHOD = "join_token"  # noqa: S105 - a method name


@dataclass(frozen=True)
class TaskLimits:
    credential_ttl: float
    credential_max_ttl: float
    task_ttl: float
    task_max_ttl: float
    issuer: str
    accepted_audiences: tuple[str, ...]
    max_delegation_depth: int = DEFAULT_MAX_DEPTH
    dpop_required_tiers: frozenset[str] = frozenset()

    @property
    def token_endpoint(self) -> str:
        return f"{self.issuer}/oauth2/token"


def _no_manifest() -> str | None:
    return None


@dataclass(frozen=True)
class TaskRequest:
    """What a token request asks of a new task, as the API layer read it.

    ``requested`` is the parsed scope (``scope`` plus the task's ``tools``); ``audiences`` are as
    sent (``audience`` and ``resource``), checked by ``start``. ``manifest`` reads the agent
    manifest parameter: it is called only when a manifest is checked, so a malformed one is
    refused at that step and nowhere else.
    """

    purpose: str
    category: str
    requested: tuple[str, ...]
    audiences: tuple[str, ...] = ()
    ttl: float | None = None
    on_behalf_of: str | None = None
    manifest: Callable[[], str | None] = _no_manifest


@dataclass(frozen=True)
class Ended:
    """What ending a task did: the task, the subtasks ended with it, and what listeners (leases)
    reported."""

    task: Task
    subtasks: list[Task]
    revoked: list[Credential]
    reports: dict[str, Any]


EndListener = Callable[[list[Task], str], dict[str, Any]]


@dataclass
class Cascade:
    """What ending all of an agent's tasks did (the kill switch reports it)."""

    tasks: int = 0
    leases_revoked: list[str] = field(default_factory=list)
    leases_pending: list[str] = field(default_factory=list)

    def add(self, ended: Ended) -> None:
        self.tasks += 1 + len(ended.subtasks)
        leases = ended.reports.get("leases") or {}
        self.leases_revoked += leases.get("revoked", [])
        self.leases_pending += leases.get("pending", [])


@dataclass(frozen=True, slots=True)
class _Refusal:
    reason: str
    message: str
    oauth: str = "invalid_grant"
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Admission:
    """A start request as the admission steps see it; each step may fill in what it found."""

    identity: WorkloadIdentity
    request: TaskRequest
    proof: DPoPProof | None
    parent: Parent | None
    now: float
    resolution: Resolution | None = None
    agent: Agent | None = None
    granted: tuple[str, ...] = ()
    manifest: dict[str, Any] | None = None

    @property
    def chain(self) -> tuple[str, ...]:
        acting = self.agent.spiffe_id if self.agent is not None else self.identity.subject
        return (*self.parent.task.chain, acting) if self.parent else (acting,)


_Step = Callable[[_Admission], "_Refusal | None"]


class TaskService:
    def __init__(
        self,
        store: Store,
        state: HotState,
        auditor: Auditor,
        clock: Clock,
        attestors: AttestorRegistry,
        credentials: CredentialService,
        limits: TaskLimits,
        entries: EntryService | None = None,
        manifests: ManifestService | None = None,
        end_listeners: Sequence[tuple[str, EndListener]] = (),
    ) -> None:
        self._entries = entries or EntryService(store, state, auditor, clock)
        self._manifests = manifests
        self._store = store
        self._state = state
        self._audit = auditor
        self._clock = clock
        self._attestors = attestors
        self._credentials = credentials
        self._limits = limits
        # called as ``listener(tasks, actor)`` after tasks end (leases are revoked this way);
        # what one returns is reported under its name
        self._end_listeners: list[tuple[str, EndListener]] = list(end_listeners)
        # admission, in order: the first refusal wins
        self._admission: tuple[_Step, ...] = (
            self._resolve,
            self._standing,
            self._asked_for,
            self._within_parent,
            self._grant,
            self._bound_when_required,
            self._manifest_matches,
            self._spend_join_token,
        )

    @property
    def limits(self) -> TaskLimits:
        return self._limits

    @property
    def state(self) -> HotState:
        return self._state

    def on_end(self, name: str, listener: EndListener) -> None:
        """Call ``listener(tasks, actor)`` after tasks end (leases are revoked this way); what it
        returns is reported under ``name``."""
        self._end_listeners.append((name, listener))

    # -- starting a task ----------------------------------------------------------------------
    def attest(
        self, subject_token: str, token_type: str, channel: Channel | None = None
    ) -> WorkloadIdentity:
        """The workload identity the subject token proves (``channel``: how the request arrived,
        e.g. the TLS peer certificate for X.509-SVIDs)."""
        try:
            return self._attestors.attest(subject_token, token_type, channel)
        except AttestationError as exc:
            self._audit.record(
                "task.refused",
                "anonymous",
                {
                    "reason": exc.detail.get("reason", exc.code),
                    "detail": exc.message,
                    "token_type": token_type,
                    "method": exc.detail.get("method"),
                },
            )
            raise OAuthError("invalid_request", "the subject token could not be verified") from exc

    def start(
        self,
        identity: WorkloadIdentity,
        request: TaskRequest,
        proof: DPoPProof | None = None,
        parent: Parent | None = None,
    ) -> Issued:
        """Start a task for ``identity`` (a subtask of ``parent``'s when delegating), bound to
        ``proof``'s key when there is one; its first credential."""
        now = self._clock.now()
        audience = self._audiences(request.audiences, parent)
        admission = _Admission(identity, request, proof, parent, now)
        refusal: _Refusal | None = None
        for step in self._admission:
            refusal = step(admission)
            if refusal is not None:
                break
        if refusal is not None or admission.agent is None or admission.resolution is None:
            self._refuse(admission, refusal or _Refusal("unknown_agent", "unknown agent"))
        task = self._new_task(admission, audience)
        return self._commit(admission, task)

    def _audiences(self, requested: Sequence[str], parent: Parent | None) -> tuple[str, ...]:
        allowed = parent.credential.audience if parent else self._limits.accepted_audiences
        for aud in requested:
            if aud not in allowed:
                raise OAuthError(
                    "invalid_target",
                    f"audience `{aud}` is not known to this warden"
                    if parent is None
                    else f"audience `{aud}` is not one the parent credential holds",
                )
        default = parent.credential.audience if parent else (self._limits.issuer,)
        return tuple(dict.fromkeys(requested)) or default

    def _resolve(self, a: _Admission) -> _Refusal | None:
        """The registered agent the identity is (by its registration entry)."""
        try:
            a.resolution = self._entries.resolve(a.identity)
        except AttestationError as exc:
            return _Refusal(str(exc.detail.get("reason", "unknown_agent")), exc.message)
        a.agent = a.resolution.agent
        return None

    def _standing(self, a: _Admission) -> _Refusal | None:
        """The agent is active, and so is the human who owns it."""
        agent = a.agent
        if agent is None:
            return None
        if agent.status is not AgentStatus.ACTIVE:
            return _Refusal("agent_inactive", f"agent `{agent.name}` is {agent.status.value}")
        try:
            owner = self._store.fetch_human(agent.owner)
        except NotFoundError:
            return _Refusal("owner_missing", f"agent `{agent.name}` has no known owner")
        if owner.status is not HumanStatus.ACTIVE:
            return _Refusal("owner_inactive", f"the owner of agent `{agent.name}` is not active")
        return None

    def _asked_for(self, a: _Admission) -> _Refusal | None:
        if a.request.requested:
            return None
        return _Refusal(
            "empty_request", "no scope requested: send `scope` or task `tools`", "invalid_scope"
        )

    def _within_parent(self, a: _Admission) -> _Refusal | None:
        """A delegation: the child may act for the parent, asks within its scope and depth."""
        if a.parent is None:
            return None
        broken = check_delegation(
            parent_chain=a.parent.task.chain,
            child=a.agent.spiffe_id if a.agent is not None else a.identity.subject,
            requested=a.request.requested,
            parent_scope=a.parent.credential.scope,
            may_act=a.identity.claims.get("may_act"),
            actor_issuer=self._limits.issuer,
            max_depth=self._limits.max_delegation_depth,
        )
        if broken is None:
            return None
        return _Refusal(f"delegation_{broken.reason}", broken.message, broken.oauth_error)

    def _grant(self, a: _Admission) -> _Refusal | None:
        """What of the request the agent's entitlements allow: some of it, or a refusal."""
        if a.agent is None:
            return None
        a.granted = grant(a.request.requested, a.agent.entitlements)
        if a.granted:
            return None
        return _Refusal(
            "empty_grant",
            "none of the requested scope is within the agent's entitlements",
            "invalid_scope",
        )

    def _bound_when_required(self, a: _Admission) -> _Refusal | None:
        """Agents of the risk tiers in ``dpop.required_risk_tiers`` bind credentials with DPoP."""
        agent = a.agent
        if agent is None or a.proof is not None:
            return None
        if agent.risk_tier.value not in self._limits.dpop_required_tiers:
            return None
        return _Refusal(
            "dpop_required",
            f"agents of risk tier `{agent.risk_tier.value}` must bind credentials with DPoP",
            "invalid_dpop_proof",
        )

    def _manifest_matches(self, a: _Admission) -> _Refusal | None:
        """The agent manifest presented is the one the agent declares (``service.manifests``)."""
        if a.agent is None or self._manifests is None:
            return None
        try:
            a.manifest = self._manifests.check(a.agent, a.request.manifest(), now=a.now)
        except ManifestMismatchError as exc:
            return _Refusal(
                "manifest_mismatch",
                exc.message,
                "manifest_mismatch",
                {"differences": exc.detail.get("differences", [])},
            )
        return None

    def _spend_join_token(self, a: _Admission) -> _Refusal | None:
        """The last check before any write: of two concurrent uses exactly one wins."""
        if a.identity.method != JOIN_TOKEN_METHOD:
            return None
        try:
            self._store.consume_join_token(str(a.identity.details["join_token"]), now=a.now)
        except (ConflictError, NotFoundError):
            return _Refusal("join_token_used", "the join token has already been used")
        return None

    def _refuse(self, a: _Admission, refusal: _Refusal) -> NoReturn:
        self._audit.record(
            "task.refused",
            a.identity.subject,
            {
                "reason": refusal.reason,
                "detail": refusal.message,
                "requested_scope": list(a.request.requested),
                **attestation_record(a.identity, a.resolution),
                **_lineage(a.parent, a.chain),
                **refusal.extra,
            },
            agent=a.agent.name if a.agent else None,
        )
        raise OAuthError(refusal.oauth, refusal.message)

    def _new_task(self, a: _Admission, audience: tuple[str, ...]) -> Task:
        """The task admitted: its lifetime bounded by the settings, and by its parent's."""
        agent, parent, request = a.agent, a.parent, a.request
        assert agent is not None
        task_ttl = min(request.ttl or self._limits.task_ttl, self._limits.task_max_ttl)
        expires_at = a.now + task_ttl
        on_behalf_of = request.on_behalf_of
        if parent is not None:
            # a subtask never outlives its parent and acts for the parent's human
            expires_at = min(expires_at, parent.task.expires_at)
            on_behalf_of = parent.task.on_behalf_of or on_behalf_of
        return Task(
            id=new_id("task"),
            agent_name=agent.name,
            spiffe_id=agent.spiffe_id,
            purpose=request.purpose,
            category=request.category,
            requested_scope=request.requested,
            granted_scope=a.granted,
            audience=audience,
            created_at=a.now,
            expires_at=expires_at,
            parent_id=parent.task.id if parent else None,
            on_behalf_of=on_behalf_of,
            attestation={
                **attestation_record(a.identity, a.resolution),
                **({"manifest": a.manifest} if a.manifest is not None else {}),
            },
            chain=a.chain,
        )

    def _commit(self, a: _Admission, task: Task) -> Issued:
        """Mint the first credential; the task, it and their issuance records commit together
        (ADR 0090)."""
        actor, granted, audience = a.identity.subject, a.granted, task.audience
        jkt = a.proof.jkt if a.proof else None
        issued, credential = self._credentials.mint(
            task,
            subject=task.spiffe_id,
            audience=audience,
            scope=granted,
            jkt=jkt,
            not_after=task.expires_at,
        )
        started = self._audit.draft(
            "task.started",
            actor,
            {
                "purpose": task.purpose,
                "category": task.category,
                "requested_scope": list(task.requested_scope),
                "granted_scope": list(granted),
                "audience": list(audience),
                "expires_at": task.expires_at,
                "on_behalf_of": task.on_behalf_of,
                "attestation": task.attestation,
                "dpop_jkt": jkt,
                **_lineage(a.parent, task.chain),
            },
            agent=task.agent_name,
            task_id=task.id,
        )
        issued_record = self._credentials.issue_record(
            credential,
            "credential.issued",
            actor,
            audience,
            granted,
            chain=list(task.chain),
            jkt=jkt,
        )
        self._audit.writer.ensure_available()
        records = self._store.create_task(task, credential, [started, issued_record])
        self._state.put_task(task)
        self._audit.writer.committed(records)
        return Issued(
            issued.token, issued.expires_at - issued.issued_at, granted, task, jkt is not None
        )

    # -- ending tasks -------------------------------------------------------------------------
    def end(self, task_id: str, status: TaskStatus, *, actor: str, reason: str = "") -> Task:
        return self.end_tree(task_id, status, actor=actor, reason=reason).task

    def end_tree(
        self,
        task_id: str,
        status: TaskStatus,
        *,
        actor: str,
        reason: str = "",
        at: float | None = None,
    ) -> Ended:
        """End a task and its delegated subtree; revoke their credentials; tell listeners
        (``at``: when the end was asked for, if earlier — journaled during an outage)."""
        now = at or self._clock.now()
        ended = self._store.end_task_tree(task_id, status, ended_at=now, reason=reason)
        revoked = [c for _, creds in ended for c in creds]
        self._state.end_tasks(
            {t.id: t.expires_at for t, _ in ended}, {c.jti: c.expires_at for c in revoked}
        )
        for task, creds in ended:
            self._audit.record(
                f"task.{task.status.value}",
                actor,
                {
                    "reason": task.end_reason or "",
                    "revoked_credentials": [c.jti for c in creds],
                    "parent_id": task.parent_id,
                    "chain": list(task.chain),
                    "depth": task.depth,
                    **({"cascade_from": task_id} if task.id != task_id else {}),
                },
                agent=task.agent_name,
                task_id=task.id,
            )
            for cred in creds:
                self._audit.record(
                    "credential.revoked",
                    actor,
                    {"jti": cred.jti, "reason": f"task {task.status.value}"},
                    agent=task.agent_name,
                    task_id=task.id,
                )
        tasks = [t for t, _ in ended]
        reports: dict[str, Any] = {}
        for name, listener in self._end_listeners:
            try:
                reports[name] = listener(tasks, actor)
            except Exception as exc:  # the tasks ended; the listener's own record says what failed
                log.exception("end listener `%s` failed", name)
                reports[name] = {"error": str(exc)[:300]}
        return Ended(tasks[0], tasks[1:], revoked, reports)

    def record_journaled_end(
        self, task_id: str, *, actor: str, reason: str, note: dict[str, Any]
    ) -> None:
        """The audit record of an end accepted into the outage journal (ADR 0093) for a task
        the database already holds as ended: its row may have committed while the end's own
        audit record could not be (the database went away in between), so the acknowledged
        request is recorded here rather than lost."""
        task = self._store.fetch_task(task_id)
        self._audit.record(
            f"task.{task.status.value}",
            actor,
            {"reason": task.end_reason or reason, "already_ended": True, **note},
            agent=task.agent_name,
            task_id=task.id,
        )

    def end_all_for_agent(
        self, agent_name: str, status: TaskStatus, reason: str, actor: str
    ) -> Cascade:
        """End every task of the agent, with their delegated subtrees (and their leases)."""
        cascade = Cascade()
        seen: set[str] = set()
        candidates = [t.id for t in list(self._state.tasks.values()) if t.agent_name == agent_name]
        # tasks this replica never saw (started elsewhere): the store is the authority
        candidates += [t.id for t in self._store.list_active_tasks() if t.agent_name == agent_name]
        for task_id in candidates:
            if task_id in seen:
                continue
            seen.add(task_id)
            try:
                result = self.end_tree(task_id, status, actor=actor, reason=reason)
            except (ConflictError, NotFoundError):
                self._state.forget_task(task_id, 0.0)
                continue
            cascade.add(result)
            seen.update(t.id for t in result.subtasks)
        return cascade

    def sweep_expired(self) -> int:
        now = self._clock.now()
        count = 0
        for task_id in self._state.expired_tasks(now):
            try:
                self.end_tree(
                    task_id, TaskStatus.EXPIRED, actor="warden", reason="task lifetime reached"
                )
                count += 1
            except (ConflictError, NotFoundError):
                self._state.forget_task(task_id, now)
        self._state.prune_revoked(now)
        return count


def _lineage(parent: Parent | None, chain: Sequence[str]) -> dict[str, Any]:
    if parent is None:
        return {}
    return {"parent_id": parent.task.id, "chain": list(chain), "depth": len(chain) - 1}


def attestation_record(identity: WorkloadIdentity, resolution: Resolution | None) -> dict[str, Any]:
    """How the identity was proven, for the task and its audit records (never the evidence).

    ``method``, ``spiffe_id``, ``trust_domain``, ``evidence_hash`` (SHA-256 of what was
    presented), ``subject``, and once an agent was found ``entry`` (id and selectors of the
    matched entry) and ``selectors`` (the identity's selectors that matched it). An identity
    that stands for an earlier attestation (a JWT-SVID from Warden's workload socket) reports
    that attestation's method, entry and evidence, with ``via`` and ``svid_hash``.
    """
    record: dict[str, Any] = {
        "method": identity.method,
        "spiffe_id": identity.spiffe_id,
        "trust_domain": identity.trust_domain,
        "evidence_hash": identity.evidence_hash,
        "subject": identity.subject,
    }
    origin = identity.details.get("origin")
    if isinstance(origin, dict):
        record.update(
            method=str(origin.get("method", identity.method)),
            via=str(origin.get("via", "")),
            svid_hash=identity.evidence_hash,
            evidence_hash=str(origin.get("evidence_hash", identity.evidence_hash)),
            entry={
                "id": str(origin.get("entry", "")),
                "selectors": [str(s) for s in origin.get("selectors", [])],
            },
            selectors=[str(s) for s in origin.get("selectors", [])],
        )
        return record
    if identity.method == JOIN_TOKEN_METHOD:
        record["join_token"] = identity.details.get("join_token")
    if resolution is not None:
        entry = resolution.entry
        record["entry"] = {"id": entry.id, "selectors": list(entry.selectors)}
        record["selectors"] = sorted(set(entry.selectors) & identity.selectors) or list(
            entry.selectors
        )
    return record


def task_view(task: Task) -> dict[str, Any]:
    return {
        "id": task.id,
        "agent": task.agent_name,
        "spiffe_id": task.spiffe_id,
        "status": task.status.value,
        "purpose": task.purpose,
        "category": task.category,
        "requested_scope": list(task.requested_scope),
        "granted_scope": list(task.granted_scope),
        "audience": list(task.audience),
        "parent_id": task.parent_id,
        "on_behalf_of": task.on_behalf_of,
        "created_at": task.created_at,
        "expires_at": task.expires_at,
        "ended_at": task.ended_at,
        "end_reason": task.end_reason,
        "attestation": task.attestation,
        "chain": list(task.chain),
        "depth": task.depth,
    }
