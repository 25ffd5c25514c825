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
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from warden.attestation.base import AttestorRegistry, Channel, WorkloadIdentity
from warden.core.clock import Clock
from warden.core.ids import new_id
from warden.core.model import AgentStatus, Credential, HumanStatus, Task, TaskStatus
from warden.core.ports import Store
from warden.core.scope import format_scope, grant, parse_scope
from warden.errors import (
    AttestationError,
    ConflictError,
    InvalidParameterError,
    NotFoundError,
    OAuthError,
    TokenInvalidError,
    TokenRevokedError,
)
from warden.service.auditing import Auditor
from warden.service.entries import EntryService, Resolution
from warden.service.state import HotState
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
        entries: EntryService | None = None,
    ) -> None:
        self._entries = entries or EntryService(store, state, auditor, clock)
        self._store = store
        self._state = state
        self._audit = auditor
        self._clock = clock
        self._attestors = attestors
        self._issuer = issuer
        self._verifier = verifier
        self._limits = limits

    # -- token endpoint ---------------------------------------------------------------------
    def token(
        self, form: Mapping[str, Sequence[str]], channel: Channel | None = None
    ) -> dict[str, Any]:
        grant_type = _one(form, "grant_type", required=True)
        if grant_type != TOKEN_EXCHANGE:
            raise OAuthError(
                "unsupported_grant_type", f"grant type `{grant_type}` is not supported"
            )
        subject_token = _one(form, "subject_token", required=True)
        subject_token_type = _one(form, "subject_token_type", required=True)
        assert subject_token is not None and subject_token_type is not None
        if form.get("actor_token") or form.get("actor_token_type"):
            raise OAuthError(
                "invalid_request", "delegation with `actor_token` is not supported yet"
            )
        if subject_token_type == ACCESS_TOKEN_TYPE:
            return self._renew(subject_token, form)
        return self._start(subject_token, subject_token_type, form, channel)

    def _audiences(self, form: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
        requested = [*(form.get("audience") or []), *(form.get("resource") or [])]
        for aud in requested:
            if aud not in self._limits.accepted_audiences:
                raise OAuthError("invalid_target", f"audience `{aud}` is not known to this warden")
        return tuple(dict.fromkeys(requested)) or (self._limits.issuer,)

    def _details(self, form: Mapping[str, Sequence[str]]) -> dict[str, Any]:
        raw = _one(form, "authorization_details")
        if raw is None:
            raise OAuthError(
                "invalid_request",
                "a task needs a purpose: send `authorization_details` "
                '[{"type": "agent_task", "purpose": "…"}]',
            )
        try:
            details = json.loads(raw)
        except ValueError:
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
        channel: Channel | None,
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
        audience = self._audiences(form)
        resolution: Resolution | None = None
        agent = None
        refusal = None
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
        granted: tuple[str, ...] = ()
        if refusal is None and agent is not None:
            granted = grant(requested, agent.entitlements)
            if not granted:
                refusal = (
                    "empty_grant",
                    "none of the requested scope is within the agent's entitlements",
                )
        if refusal is None and identity.method == JOIN_TOKEN_METHOD:
            # last check before any write: of two concurrent uses exactly one wins
            try:
                self._store.consume_join_token(str(identity.details["join_token"]), now=now)
            except (ConflictError, NotFoundError):
                refusal = ("join_token_used", "the join token has already been used")
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
                },
                agent=agent.name if agent else None,
            )
            oauth = "invalid_scope" if code in ("empty_grant", "empty_request") else "invalid_grant"
            raise OAuthError(oauth, message)
        task_ttl = min(details["ttl"] or self._limits.task_ttl, self._limits.task_max_ttl)
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
            expires_at=now + task_ttl,
            on_behalf_of=details["on_behalf_of"],
            attestation=attestation_record(identity, resolution),
        )
        issued = self._issuer.issue(
            subject=agent.spiffe_id,
            audience=audience,
            task_id=task.id,
            scope=granted,
            ttl=self._limits.credential_ttl,
            not_after=task.expires_at,
        )
        credential = Credential(
            jti=issued.jti,
            task_id=task.id,
            agent_name=agent.name,
            issued_at=issued.issued_at,
            expires_at=issued.expires_at,
            kid=issued.kid,
        )
        self._store.create_task(task, credential)
        self._state.put_task(task)
        self._audit.record(
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
            },
            agent=agent.name,
            task_id=task.id,
        )
        self._record_issue(credential, "credential.issued", actor, audience, granted)
        return self._response(issued.token, issued.expires_at - issued.issued_at, granted, task)

    def _renew(self, token: str, form: Mapping[str, Sequence[str]]) -> dict[str, Any]:
        try:
            cred = self.verify_live(token)
        except TokenInvalidError as exc:
            self._audit.record("credential.renew_refused", "anonymous", {"reason": exc.code})
            raise OAuthError("invalid_grant", "the task credential is not valid") from exc
        task = self._state.tasks[cred.task_id]
        scope = tuple(sorted(cred.scope))
        narrowed = _one(form, "scope")
        if narrowed is not None:
            try:
                wanted = parse_scope(narrowed)
            except InvalidParameterError as exc:
                raise OAuthError("invalid_scope", exc.message) from exc
            if not set(wanted) <= cred.scope or not wanted:
                raise OAuthError("invalid_scope", "a renewal may only keep or narrow the scope")
            scope = wanted
        issued = self._issuer.issue(
            subject=cred.subject,
            audience=cred.audience,
            task_id=task.id,
            scope=scope,
            ttl=self._limits.credential_ttl,
            not_after=task.expires_at,
        )
        credential = Credential(
            jti=issued.jti,
            task_id=task.id,
            agent_name=task.agent_name,
            issued_at=issued.issued_at,
            expires_at=issued.expires_at,
            kid=issued.kid,
        )
        self._store.create_credential(credential)
        self._record_issue(
            credential, "credential.renewed", cred.subject, cred.audience, scope, previous=cred.jti
        )
        return self._response(
            issued.token,
            issued.expires_at - issued.issued_at,
            scope,
            self._store.fetch_task(task.id),
        )

    def _record_issue(
        self,
        credential: Credential,
        type: str,
        actor: str,
        audience: Sequence[str],
        scope: Sequence[str],
        **extra: Any,
    ) -> None:
        self._audit.record(
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
        self, token: str, lifetime: float, scope: Sequence[str], task: Task
    ) -> dict[str, Any]:
        return {
            "access_token": token,
            "issued_token_type": ACCESS_TOKEN_TYPE,
            "token_type": "Bearer",
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

    def check_live(self, cred: VerifiedCredential) -> None:
        """Revocation, task active and unexpired, agent active — or TokenRevokedError."""
        if cred.jti in self._state.revoked:
            raise _revoked("credential revoked")
        task = self._state.tasks.get(cred.task_id)
        if task is None:
            raise _revoked("task is not active")
        if task.expires_at <= self._clock.now():
            raise _revoked("task expired")
        if self._state.agent_is_active(cred.subject) is None:
            raise _revoked("agent is not active")

    # -- ending tasks -------------------------------------------------------------------------
    def end(self, task_id: str, status: TaskStatus, *, actor: str, reason: str = "") -> Task:
        now = self._clock.now()
        task, revoked = self._store.end_task(task_id, status, ended_at=now, reason=reason)
        self._state.end_task(task_id, {c.jti: c.expires_at for c in revoked})
        self._audit.record(
            f"task.{status.value}",
            actor,
            {"reason": reason, "revoked_credentials": [c.jti for c in revoked]},
            agent=task.agent_name,
            task_id=task_id,
        )
        for cred in revoked:
            self._audit.record(
                "credential.revoked",
                actor,
                {"jti": cred.jti, "reason": f"task {status.value}"},
                agent=task.agent_name,
                task_id=task_id,
            )
        return task

    def end_all_for_agent(
        self, agent_name: str, status: TaskStatus, reason: str, actor: str
    ) -> int:
        ended = 0
        for live in [t for t in list(self._state.tasks.values()) if t.agent_name == agent_name]:
            try:
                self.end(live.id, status, actor=actor, reason=reason)
                ended += 1
            except (ConflictError, NotFoundError):
                self._state.end_task(live.id, {})
        # tasks this replica never saw (started elsewhere) — the store is the authority
        for task in list(self._store.list_active_tasks()):
            if task.agent_name == agent_name:
                try:
                    self.end(task.id, status, actor=actor, reason=reason)
                    ended += 1
                except (ConflictError, NotFoundError):
                    pass
        return ended

    def sweep_expired(self) -> int:
        now = self._clock.now()
        count = 0
        for task_id in self._state.expired_tasks(now):
            try:
                self.end(
                    task_id, TaskStatus.EXPIRED, actor="warden", reason="task lifetime reached"
                )
                count += 1
            except (ConflictError, NotFoundError):
                self._state.end_task(task_id, {})
        self._state.prune_revoked(now)
        return count


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
    }
