"""Tasks and task credentials: RFC 8693 token exchange, renewal, and ending (which revokes).

Request parameters (``application/x-www-form-urlencoded``, RFC 8693 §2.1):

- ``grant_type`` = ``urn:ietf:params:oauth:grant-type:token-exchange``
- ``subject_token`` + ``subject_token_type``: the workload identity (a JWT-SVID, type
  ``urn:ietf:params:oauth:token-type:jwt`` or ``…:jwt-svid``) to start a task, or a Warden task
  credential (``urn:ietf:params:oauth:token-type:access_token``) to renew one
- ``scope``: the tools/actions requested (space separated)
- ``audience`` / ``resource``: who the credential is for (repeatable; default: this Warden)
- ``authorization_details`` (RFC 9396): a JSON array with one ``{"type": "agent_task",
  "purpose": "…", "category": "…", "tools": […], "ttl": seconds, "on_behalf_of": "…"}``;
  ``tools`` are added to ``scope``
- ``actor_token`` + ``actor_token_type`` (``…:access_token``): delegation — a live task
  credential of the parent task; the subject token is then the child agent's own workload
  identity (see ``service.delegation``). When the parent credential is DPoP-bound, the parent
  signs a proof for this request too and it goes in ``actor_token_dpop`` (a Warden extension:
  one request can only carry one ``DPoP`` header, and that one binds the child).

A ``DPoP`` header (RFC 9449) binds the issued credential to the proof's key (``cnf.jkt``,
``token_type: DPoP``); agents of the risk tiers in ``dpop.required_risk_tiers`` must send one.
A renewal of a bound credential needs a proof by the same key.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from warden.attestation.base import AttestorRegistry, Channel, WorkloadIdentity
from warden.core.clock import Clock
from warden.core.ids import new_id
from warden.core.model import (
    Agent,
    AgentStatus,
    AuditDraft,
    Credential,
    HumanStatus,
    Task,
    TaskStatus,
)
from warden.core.ports import Store
from warden.core.scope import effective_scope, format_scope, grant, parse_scope
from warden.errors import (
    AttestationError,
    ConflictError,
    DPoPProofError,
    InvalidParameterError,
    NotFoundError,
    OAuthError,
    TokenExpiredError,
    TokenInvalidError,
    TokenRevokedError,
)
from warden.service.auditing import Auditor
from warden.service.delegation import DEFAULT_MAX_DEPTH, act_claim, check_delegation
from warden.service.entries import EntryService, Resolution
from warden.service.manifests import FORM_PARAMETER as MANIFEST_PARAMETER
from warden.service.manifests import ManifestMismatchError, ManifestService
from warden.service.state import HotState, LiveTask
from warden.tokens.dpop import DPoPProof, DPoPVerifier, access_token_hash
from warden.tokens.issuer import TaskCredentialIssuer
from warden.tokens.verifier import TaskCredentialVerifier, VerifiedCredential

log = logging.getLogger("warden.tasks")

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105 - a URN
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105 - a URN
TASK_DETAILS_TYPE = "agent_task"
MAX_PURPOSE = 1000
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


@dataclass(frozen=True, slots=True)
class Live:
    """A credential checked against live state: its task and agent, as the decision path sees."""

    task: LiveTask
    agent: Agent


@dataclass(frozen=True, slots=True)
class Parent:
    """The parent side of a delegation, from a verified live actor token."""

    credential: VerifiedCredential
    task: LiveTask


@dataclass(frozen=True)
class Ended:
    """What ending a task did: the task, the subtasks ended with it, and what listeners (leases)
    reported."""

    task: Task
    subtasks: list[Task]
    revoked: list[Credential]
    reports: dict[str, Any]


EndListener = Callable[[list[Task], str], dict[str, Any]]


MAX_DETAILS_BYTES = 16 * 1024
MAX_DETAILS_DEPTH = 8


def _nesting(text: str) -> int:
    """The deepest ``[``/``{`` nesting of a JSON text, outside strings (before parsing it)."""
    depth = deepest = 0
    in_string = escaped = False
    for c in text:
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif c in "]}":
            depth -= 1
    return deepest


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


def _one(form: Mapping[str, Sequence[str]], key: str, *, required: bool = False) -> str | None:
    values = form.get(key) or []
    if len(values) > 1:
        raise OAuthError("invalid_request", f"parameter `{key}` given more than once")
    if not values or values[0] == "":
        if required:
            raise OAuthError("invalid_request", f"missing parameter `{key}`")
        return None
    return values[0]


class TaskService:
    def __init__(
        self,
        store: Store,
        state: HotState,
        auditor: Auditor,
        clock: Clock,
        attestors: AttestorRegistry,
        issuer: TaskCredentialIssuer,
        verifier: TaskCredentialVerifier,
        limits: TaskLimits,
        dpop: DPoPVerifier,
        entries: EntryService | None = None,
        manifests: ManifestService | None = None,
    ) -> None:
        self._entries = entries or EntryService(store, state, auditor, clock)
        self._manifests = manifests
        self._store = store
        self._state = state
        self._audit = auditor
        self._clock = clock
        self._attestors = attestors
        self._issuer = issuer
        self._verifier = verifier
        self._limits = limits
        self._dpop = dpop
        self._end_listeners: list[tuple[str, EndListener]] = []

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

    # -- token endpoint ---------------------------------------------------------------------
    def token(
        self,
        form: Mapping[str, Sequence[str]],
        channel: Channel | None = None,
        *,
        dpop: str | None = None,
    ) -> dict[str, Any]:
        """The token endpoint. ``channel`` is how the request arrived (the TLS peer certificate
        for X.509-SVIDs); ``dpop`` is the request's ``DPoP`` header, if any."""
        grant_type = _one(form, "grant_type", required=True)
        if grant_type != TOKEN_EXCHANGE:
            raise OAuthError(
                "unsupported_grant_type", f"grant type `{grant_type}` is not supported"
            )
        subject_token = _one(form, "subject_token", required=True)
        subject_token_type = _one(form, "subject_token_type", required=True)
        assert subject_token is not None and subject_token_type is not None
        actor_token = _one(form, "actor_token")
        actor_token_type = _one(form, "actor_token_type")
        if (actor_token is None) != (actor_token_type is None):
            raise OAuthError("invalid_request", "`actor_token` and `actor_token_type` go together")
        proof = self._token_proof(dpop) if dpop is not None else None
        if actor_token is not None:
            if actor_token_type != ACCESS_TOKEN_TYPE or subject_token_type == ACCESS_TOKEN_TYPE:
                raise OAuthError(
                    "invalid_request",
                    "delegation takes the child's workload identity as `subject_token` and a "
                    f"task credential (`{ACCESS_TOKEN_TYPE}`) as `actor_token`",
                )
            parent = self._parent(actor_token, _one(form, "actor_token_dpop"))
            return self._start(
                subject_token, subject_token_type, form, proof, parent, channel=channel
            )
        if subject_token_type == ACCESS_TOKEN_TYPE:
            return self._renew(subject_token, form, proof)
        return self._start(subject_token, subject_token_type, form, proof, channel=channel)

    def _token_proof(self, header: str, *, access_token: str | None = None) -> DPoPProof:
        """A DPoP proof for a token request (htm POST, htu the token endpoint)."""
        try:
            return self._dpop.verify(
                header, method="POST", uri=self._limits.token_endpoint, access_token=access_token
            )
        except DPoPProofError as exc:
            self._audit.record(
                "task.refused",
                "anonymous",
                {"reason": "dpop_invalid", "detail": exc.detail.get("reason", "malformed")},
            )
            raise OAuthError("invalid_dpop_proof", exc.message) from None

    def _parent(self, actor_token: str, actor_proof: str | None) -> Parent:
        """Verify the parent's task credential (and its proof when it is DPoP-bound)."""
        try:
            cred = self.verify_signature(actor_token)
            live = self.check_live(cred)
        except TokenInvalidError as exc:
            self._audit.record(
                "task.refused",
                "anonymous",
                {"reason": "actor_invalid", "detail": exc.code},
            )
            raise OAuthError(
                "invalid_request", "the actor token is not a live task credential"
            ) from exc
        if cred.jkt is not None:
            try:
                self._dpop.verify(
                    actor_proof,
                    method="POST",
                    uri=self._limits.token_endpoint,
                    access_token=actor_token,
                    jkt=cred.jkt,
                )
            except DPoPProofError as exc:
                self._audit.record(
                    "task.refused",
                    cred.subject,
                    {"reason": "actor_dpop_invalid", "detail": exc.detail.get("reason")},
                    agent=live.agent.name,
                    task_id=cred.task_id,
                )
                raise OAuthError(
                    "invalid_dpop_proof",
                    "the actor token is DPoP-bound: the parent must sign `actor_token_dpop`",
                ) from None
        return Parent(cred, live.task)

    def _audiences(
        self, form: Mapping[str, Sequence[str]], parent: Parent | None = None
    ) -> tuple[str, ...]:
        requested = [*(form.get("audience") or []), *(form.get("resource") or [])]
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

    def _details(self, form: Mapping[str, Sequence[str]]) -> dict[str, Any]:
        raw = _one(form, "authorization_details")
        if raw is None:
            raise OAuthError(
                "invalid_request",
                "a task needs a purpose: send `authorization_details` "
                '[{"type": "agent_task", "purpose": "…"}]',
            )
        if len(raw) > MAX_DETAILS_BYTES or _nesting(raw) > MAX_DETAILS_DEPTH:
            raise OAuthError(
                "invalid_request",
                f"`authorization_details` must be at most {MAX_DETAILS_BYTES} bytes and "
                f"{MAX_DETAILS_DEPTH} levels deep",
            )
        try:
            details = json.loads(raw)
        except (ValueError, RecursionError):
            raise OAuthError(
                "invalid_request", "`authorization_details` is not valid json"
            ) from None
        if isinstance(details, dict):
            details = [details]
        if not isinstance(details, list) or not all(isinstance(d, dict) for d in details):
            raise OAuthError(
                "invalid_request", "`authorization_details` must be a json array of objects"
            )
        tasks = [d for d in details if d.get("type") == TASK_DETAILS_TYPE]
        if len(tasks) != 1:
            raise OAuthError(
                "invalid_request",
                f"`authorization_details` needs exactly one entry of type `{TASK_DETAILS_TYPE}`",
            )
        task = tasks[0]
        purpose = task.get("purpose")
        if not isinstance(purpose, str) or not purpose.strip() or len(purpose) > MAX_PURPOSE:
            raise OAuthError("invalid_request", "task `purpose` must be a non-empty string (≤1000)")
        category = task.get("category", "general")
        if not isinstance(category, str) or not category or len(category) > 100:
            raise OAuthError("invalid_request", "task `category` must be a short string")
        tools = task.get("tools", [])
        if not isinstance(tools, list) or not all(isinstance(t, str) for t in tools):
            raise OAuthError("invalid_request", "task `tools` must be a list of strings")
        ttl = task.get("ttl")
        if ttl is not None and (
            isinstance(ttl, bool) or not isinstance(ttl, int | float) or ttl <= 0
        ):
            raise OAuthError("invalid_request", "task `ttl` must be a positive number of seconds")
        obo = task.get("on_behalf_of")
        if obo is not None and (not isinstance(obo, str) or not obo or len(obo) > 320):
            raise OAuthError("invalid_request", "task `on_behalf_of` must be a short string")
        return {
            "purpose": purpose.strip(),
            "category": category,
            "tools": tools,
            "ttl": ttl,
            "on_behalf_of": obo,
        }

    def _start(
        self,
        subject_token: str,
        token_type: str,
        form: Mapping[str, Sequence[str]],
        proof: DPoPProof | None,
        parent: Parent | None = None,
        *,
        channel: Channel | None = None,
    ) -> dict[str, Any]:
        now = self._clock.now()
        try:
            identity = self._attestors.attest(subject_token, token_type, channel)
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
        actor = identity.subject
        details = self._details(form)
        try:
            requested = parse_scope([*(_one(form, "scope") or "").split(), *details["tools"]])
        except InvalidParameterError as exc:
            raise OAuthError("invalid_scope", exc.message) from exc
        audience = self._audiences(form, parent)
        resolution: Resolution | None = None
        agent = None
        refusal = None
        oauth = "invalid_grant"
        try:
            resolution = self._entries.resolve(identity)
            agent = resolution.agent
        except AttestationError as exc:
            refusal = (str(exc.detail.get("reason", "unknown_agent")), exc.message)
        if refusal is not None or agent is None:
            pass
        elif agent.status is not AgentStatus.ACTIVE:
            refusal = ("agent_inactive", f"agent `{agent.name}` is {agent.status.value}")
        else:
            try:
                owner = self._store.fetch_human(agent.owner)
                if owner.status is not HumanStatus.ACTIVE:
                    refusal = ("owner_inactive", f"the owner of agent `{agent.name}` is not active")
            except NotFoundError:
                refusal = ("owner_missing", f"agent `{agent.name}` has no known owner")
        if refusal is None and not requested:
            refusal = ("empty_request", "no scope requested: send `scope` or task `tools`")
            oauth = "invalid_scope"
        if refusal is None and parent is not None:
            broken = check_delegation(
                parent_chain=parent.task.chain,
                child=agent.spiffe_id if agent is not None else identity.subject,
                requested=requested,
                parent_scope=parent.credential.scope,
                may_act=identity.claims.get("may_act"),
                actor_issuer=self._limits.issuer,
                max_depth=self._limits.max_delegation_depth,
            )
            if broken is not None:
                refusal = (f"delegation_{broken.reason}", broken.message)
                oauth = broken.oauth_error
        granted: tuple[str, ...] = ()
        if refusal is None and agent is not None:
            granted = grant(requested, agent.entitlements)
            if not granted:
                refusal = (
                    "empty_grant",
                    "none of the requested scope is within the agent's entitlements",
                )
                oauth = "invalid_scope"
        if (
            refusal is None
            and agent is not None
            and proof is None
            and agent.risk_tier.value in self._limits.dpop_required_tiers
        ):
            refusal = (
                "dpop_required",
                f"agents of risk tier `{agent.risk_tier.value}` must bind credentials with DPoP",
            )
            oauth = "invalid_dpop_proof"
        manifest: dict[str, Any] | None = None
        refused_with: dict[str, Any] = {}
        if refusal is None and agent is not None and self._manifests is not None:
            try:
                manifest = self._manifests.check(agent, _one(form, MANIFEST_PARAMETER), now=now)
            except ManifestMismatchError as exc:
                refusal, oauth = ("manifest_mismatch", exc.message), "manifest_mismatch"
                refused_with = {"differences": exc.detail.get("differences", [])}
        if refusal is None and identity.method == JOIN_TOKEN_METHOD:
            # last check before any write: of two concurrent uses exactly one wins
            try:
                self._store.consume_join_token(str(identity.details["join_token"]), now=now)
            except (ConflictError, NotFoundError):
                refusal = ("join_token_used", "the join token has already been used")
        acting = agent.spiffe_id if agent is not None else identity.subject
        chain = (*parent.task.chain, acting) if parent else (acting,)
        if refusal is not None or agent is None or resolution is None:
            code, message = refusal or ("unknown_agent", "unknown agent")
            self._audit.record(
                "task.refused",
                actor,
                {
                    "reason": code,
                    "detail": message,
                    "requested_scope": list(requested),
                    **attestation_record(identity, resolution),
                    **_lineage(parent, chain),
                    **refused_with,
                },
                agent=agent.name if agent else None,
            )
            raise OAuthError(oauth, message)
        task_ttl = min(details["ttl"] or self._limits.task_ttl, self._limits.task_max_ttl)
        expires_at = now + task_ttl
        on_behalf_of = details["on_behalf_of"]
        if parent is not None:
            # a subtask never outlives its parent and acts for the parent's human
            expires_at = min(expires_at, parent.task.expires_at)
            on_behalf_of = parent.task.on_behalf_of or on_behalf_of
        task = Task(
            id=new_id("task"),
            agent_name=agent.name,
            spiffe_id=agent.spiffe_id,
            purpose=details["purpose"],
            category=details["category"],
            requested_scope=requested,
            granted_scope=granted,
            audience=audience,
            created_at=now,
            expires_at=expires_at,
            parent_id=parent.task.id if parent else None,
            on_behalf_of=on_behalf_of,
            attestation={
                **attestation_record(identity, resolution),
                **({"manifest": manifest} if manifest is not None else {}),
            },
            chain=chain,
        )
        jkt = proof.jkt if proof else None
        issued = self._issuer.issue(
            subject=agent.spiffe_id,
            audience=audience,
            task_id=task.id,
            scope=granted,
            ttl=self._limits.credential_ttl,
            not_after=task.expires_at,
            extra_claims=_binding_claims(task, jkt),
        )
        credential = Credential(
            jti=issued.jti,
            task_id=task.id,
            agent_name=agent.name,
            issued_at=issued.issued_at,
            expires_at=issued.expires_at,
            kid=issued.kid,
        )
        started = self._audit.draft(
            "task.started",
            actor,
            {
                "purpose": task.purpose,
                "category": task.category,
                "requested_scope": list(requested),
                "granted_scope": list(granted),
                "audience": list(audience),
                "expires_at": task.expires_at,
                "on_behalf_of": task.on_behalf_of,
                "attestation": task.attestation,
                "dpop_jkt": jkt,
                **_lineage(parent, chain),
            },
            agent=agent.name,
            task_id=task.id,
        )
        issued_record = self._issue_draft(
            credential, "credential.issued", actor, audience, granted, chain=list(chain), jkt=jkt
        )
        # the task, its credential and their issuance records commit together (ADR 0090)
        self._audit.writer.ensure_available()
        records = self._store.create_task(task, credential, [started, issued_record])
        self._state.put_task(task)
        self._audit.writer.committed(records)
        return self._response(
            issued.token, issued.expires_at - issued.issued_at, granted, task, bound=jkt is not None
        )

    def _renew(
        self, token: str, form: Mapping[str, Sequence[str]], proof: DPoPProof | None
    ) -> dict[str, Any]:
        try:
            cred = self.verify_signature(token)
            live = self.check_live(cred)
        except TokenInvalidError as exc:
            self._audit.record("credential.renew_refused", "anonymous", {"reason": exc.code})
            raise OAuthError("invalid_grant", "the task credential is not valid") from exc
        task = live.task
        if proof is not None and proof.ath is not None and proof.ath != access_token_hash(token):
            # a proof naming another access token is not a proof for this renewal
            self._audit.record(
                "credential.renew_refused",
                cred.subject,
                {"reason": "dpop_wrong_token_hash", "jti": cred.jti},
                agent=task.agent_name,
                task_id=task.id,
            )
            raise OAuthError("invalid_dpop_proof", "the DPoP proof is for another access token")
        if cred.jkt is not None and (proof is None or proof.jkt != cred.jkt):
            self._audit.record(
                "credential.renew_refused",
                cred.subject,
                {"reason": "dpop_key_mismatch" if proof else "dpop_missing", "jti": cred.jti},
                agent=task.agent_name,
                task_id=task.id,
            )
            raise OAuthError(
                "invalid_dpop_proof",
                "the credential is DPoP-bound: renew it with a proof signed by the same key",
            )
        # what the credential had, bounded by what the agent is entitled to now (ADR 0081)
        current = effective_scope(cred.scope, live.agent.entitlements)
        if not current:
            self._audit.record(
                "credential.renew_refused",
                cred.subject,
                {"reason": "no_entitlement_left", "jti": cred.jti},
                agent=task.agent_name,
                task_id=task.id,
            )
            raise OAuthError("invalid_scope", "the agent is no longer entitled to this scope")
        scope = tuple(sorted(current))
        narrowed = _one(form, "scope")
        if narrowed is not None:
            try:
                wanted = parse_scope(narrowed)
            except InvalidParameterError as exc:
                raise OAuthError("invalid_scope", exc.message) from exc
            if not set(wanted) <= current or not wanted:
                raise OAuthError("invalid_scope", "a renewal may only keep or narrow the scope")
            scope = wanted
        jkt = proof.jkt if proof else None
        stored = self._store.fetch_task(task.id)
        issued = self._issuer.issue(
            subject=cred.subject,
            audience=cred.audience,
            task_id=task.id,
            scope=scope,
            ttl=self._limits.credential_ttl,
            not_after=task.expires_at,
            extra_claims=_binding_claims(stored, jkt),
        )
        credential = Credential(
            jti=issued.jti,
            task_id=task.id,
            agent_name=task.agent_name,
            issued_at=issued.issued_at,
            expires_at=issued.expires_at,
            kid=issued.kid,
        )
        renewed = self._issue_draft(
            credential,
            "credential.renewed",
            cred.subject,
            cred.audience,
            scope,
            previous=cred.jti,
            chain=list(task.chain),
            jkt=jkt,
            previous_jkt=cred.jkt,  # a changed binding is a CAEP credential-change
        )
        self._audit.writer.ensure_available()
        self._audit.writer.committed(self._store.create_credential(credential, [renewed]))
        return self._response(
            issued.token, issued.expires_at - issued.issued_at, scope, stored, bound=jkt is not None
        )

    def _issue_draft(
        self,
        credential: Credential,
        type: str,
        actor: str,
        audience: Sequence[str],
        scope: Sequence[str],
        **extra: Any,
    ) -> AuditDraft:
        return self._audit.draft(
            type,
            actor,
            {
                "jti": credential.jti,
                "kid": credential.kid,
                "audience": list(audience),
                "scope": list(scope),
                "issued_at": credential.issued_at,
                "expires_at": credential.expires_at,
                **extra,
            },
            agent=credential.agent_name,
            task_id=credential.task_id,
        )

    def _response(
        self, token: str, lifetime: float, scope: Sequence[str], task: Task, *, bound: bool
    ) -> dict[str, Any]:
        return {
            "access_token": token,
            "issued_token_type": ACCESS_TOKEN_TYPE,
            "token_type": "DPoP" if bound else "Bearer",
            "expires_in": max(0, int(lifetime)),
            "scope": format_scope(scope),
            "task_id": task.id,
            "task_expires_at": int(task.expires_at),
            "authorization_details": [
                {
                    "type": TASK_DETAILS_TYPE,
                    "task_id": task.id,
                    "purpose": task.purpose,
                    "category": task.category,
                    "tools": list(scope),
                    "parent_id": task.parent_id,
                    "chain": list(task.chain),
                    "depth": task.depth,
                }
            ],
        }

    # -- verifying a credential against live state -----------------------------------------
    def verify_live(self, token: str) -> VerifiedCredential:
        """Signature, claims, revocation, task active, agent active — or TokenInvalidError."""
        cred = self._verifier.verify(token)
        self.check_live(cred)
        return cred

    def verify_signature(self, token: str) -> VerifiedCredential:
        """Signature and claims only; follow with ``check_live`` before trusting it."""
        return self._verifier.verify(token)

    def check_live(self, cred: VerifiedCredential) -> Live:
        """Revocation, task active and unexpired, agent active — or TokenRevokedError.

        What this replica does not know (a task started, or an agent registered, on another
        replica) is read from the database once; what it knows to be ended or inactive is
        refused without I/O.
        """
        if cred.jti in self._state.revoked:
            raise _revoked("credential revoked")
        task = self._state.tasks.get(cred.task_id)
        if task is None:
            task = self._learn_task(cred)
            if task is None:
                raise _revoked("task is not active")
        if task.expires_at <= self._clock.now():
            raise _revoked("task expired")
        agent = self._state.agents_by_spiffe.get(cred.subject)
        if agent is None:
            agent = self._learn_agent(cred.subject)
        if agent is None or agent.status is not AgentStatus.ACTIVE:
            raise _revoked("agent is not active")
        if task.spiffe_id != cred.subject:
            raise _revoked("credential subject is not the task's agent")
        return Live(task, agent)

    def _learn_task(self, cred: VerifiedCredential) -> LiveTask | None:
        if cred.task_id in self._state.ended:
            return None
        try:
            stored = self._store.fetch_task(cred.task_id)
            recorded = self._store.fetch_credential(cred.jti)
        except NotFoundError:
            return None
        if recorded.revoked_at is not None:
            self._state.revoke(recorded.jti, recorded.expires_at, announce=False)
            return None
        self._state.put_task(stored)
        return self._state.tasks.get(stored.id)

    def _learn_agent(self, spiffe_id: str) -> Agent | None:
        try:
            agent = self._store.fetch_agent_by_spiffe_id(spiffe_id)
        except NotFoundError:
            return None
        self._state.put_agent(agent, announce=False)
        return agent

    def verify_proof(
        self,
        cred: VerifiedCredential,
        proof: str | None,
        *,
        method: str,
        uri: str,
        token: str,
        spend: bool = True,
    ) -> None:
        """For a DPoP-bound credential: a valid, unused proof by its key for this request
        (``spend=False``: valid, and left unused — see ``DPoPVerifier.verify``)."""
        if cred.jkt is None:
            return
        self._dpop.verify(
            proof, method=method, uri=uri, access_token=token, jkt=cred.jkt, spend=spend
        )

    def authenticate_agent(
        self, token: str, *, scheme: str, proof: str | None, method: str, uri: str
    ) -> VerifiedCredential:
        """An agent calling Warden's own API with its task credential (``Authorization:
        Bearer`` or, for a bound credential, ``DPoP`` plus a ``DPoP`` proof header)."""
        cred = self.verify_live(token)
        if cred.jkt is None and scheme != "bearer":
            raise DPoPProofError(
                "this credential is not DPoP-bound: use the Bearer scheme",
                detail={"reason": "not_bound"},
            )
        if cred.jkt is not None:
            if scheme != "dpop":
                raise DPoPProofError(
                    "this credential is DPoP-bound: use the DPoP scheme with a proof",
                    detail={"reason": "downgrade"},
                )
            self.verify_proof(cred, proof, method=method, uri=uri, token=token)
        return cred

    # -- revocation of single credentials (RFC 7009) ------------------------------------------
    def revoke_credential(self, token: str, *, actor: str) -> str | None:
        """Revoke the credential ``token`` is; the jti revoked, or None when there is nothing
        to revoke (not ours, malformed, or expired anyway)."""
        try:
            cred = self.verify_signature(token)
        except TokenExpiredError:
            return None
        except TokenInvalidError as exc:
            self._audit.record("credential.revoke_ignored", actor, {"reason": exc.code})
            return None
        self.revoke_jti(
            cred.jti, cred.expires_at, subject=cred.subject, task_id=cred.task_id, actor=actor
        )
        return cred.jti

    def revoke_jti(
        self,
        jti: str,
        expires_at: float,
        *,
        subject: str,
        task_id: str,
        actor: str,
        at: float | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """Record, apply and announce one credential's revocation (``at``: when it was asked
        for, if earlier — a revocation journaled during an outage, ADR 0093)."""
        try:
            self._store.revoke_credential(jti, revoked_at=at or self._clock.now())
        except NotFoundError:
            pass  # signed by us but never recorded: still refuse it from now on
        self._state.revoke(jti, expires_at)
        known = self._state.agents_by_spiffe.get(subject)
        self._audit.record(
            "credential.revoked",
            actor,
            {"jti": jti, "reason": "revoked by request (RFC 7009)", **(extra or {})},
            agent=known.name if known else None,
            task_id=task_id,
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


def _binding_claims(task: Task, jkt: str | None) -> dict[str, Any]:
    """``act`` (the delegation chain, RFC 8693 §4.1), ``cnf`` (DPoP, RFC 9449 §6) and
    ``manifest_digest`` (the verified agent manifest, see ``service.manifests``)."""
    claims: dict[str, Any] = {}
    act = act_claim(task.chain[:-1])
    if act is not None:
        claims["act"] = act
    if jkt is not None:
        claims["cnf"] = {"jkt": jkt}
    manifest = task.attestation.get("manifest")
    if isinstance(manifest, dict) and manifest.get("digest"):
        claims["manifest_digest"] = manifest["digest"]  # the signed statement this task runs
    return claims


def _lineage(parent: Parent | None, chain: Sequence[str]) -> dict[str, Any]:
    if parent is None:
        return {}
    return {"parent_id": parent.task.id, "chain": list(chain), "depth": len(chain) - 1}


def _revoked(message: str) -> TokenInvalidError:
    return TokenRevokedError(message)


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
