"""Task credentials after their task: verifying, DPoP binding, renewal and single revocation.

A task credential is a short-lived JWT Warden signs for one task (``tokens.issuer``). This module
holds what is done to one credential:

- **verification** — ``verify_signature`` (signature and claims only), ``verify_live`` (that,
  then ``service.liveness``), ``authenticate_agent`` (an agent calling Warden's own API: Bearer,
  or DPoP with a proof by the bound key), ``verify_proof`` (DPoP, RFC 9449), and for token
  requests ``request_proof`` (the request's own ``DPoP`` header) and ``verify_actor`` (the
  parent's credential in a delegation, RFC 8693 ``actor_token``);
- **minting** — ``mint`` and ``issue_record``, which the task lifecycle (``service.tasks``) uses
  for a task's first credential and ``renew`` for the ones after it;
- **renewal** — ``check_renewal`` then ``renew``: a live credential, a proof by the same key
  when it is bound, and a scope kept or narrowed within what the agent is entitled to now
  (ADR 0081);
- **revocation** of one credential (RFC 7009) — ``revoke_credential``, ``revoke_jti``.

Reading the OAuth forms these come from is the API layer's job (``api.oauth_requests``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from warden.core.clock import Clock
from warden.core.model import AuditDraft, Credential, Task
from warden.core.ports import Store
from warden.core.scope import effective_scope
from warden.errors import (
    DPoPProofError,
    NotFoundError,
    OAuthError,
    TokenExpiredError,
    TokenInvalidError,
)
from warden.service.auditing import Auditor
from warden.service.delegation import act_claim
from warden.service.liveness import Liveness
from warden.service.state import HotState, LiveTask
from warden.tokens.dpop import DPoPProof, DPoPVerifier, access_token_hash
from warden.tokens.issuer import IssuedCredential, TaskCredentialIssuer
from warden.tokens.verifier import TaskCredentialVerifier, VerifiedCredential


@dataclass(frozen=True, slots=True)
class Parent:
    """The parent side of a delegation, from a verified live actor token."""

    credential: VerifiedCredential
    task: LiveTask


@dataclass(frozen=True)
class Issued:
    """A credential just signed and recorded, with the task it is for (what the token endpoint
    answers; ``token`` is a secret and kept out of repr)."""

    token: str = field(repr=False)
    lifetime: float
    scope: tuple[str, ...]
    task: Task
    bound: bool


@dataclass(frozen=True)
class Renewal:
    """A credential that may be renewed: live, its binding proven, and the scope it may keep
    (what it had, bounded by the agent's entitlements now)."""

    credential: VerifiedCredential
    task: LiveTask
    current: frozenset[str]
    proof: DPoPProof | None


class CredentialService:
    def __init__(
        self,
        store: Store,
        state: HotState,
        auditor: Auditor,
        clock: Clock,
        issuer: TaskCredentialIssuer,
        verifier: TaskCredentialVerifier,
        dpop: DPoPVerifier,
        liveness: Liveness,
        *,
        credential_ttl: float,
        token_endpoint: str,
    ) -> None:
        self._store = store
        self._state = state
        self._audit = auditor
        self._clock = clock
        self._issuer = issuer
        self._verifier = verifier
        self._dpop = dpop
        self._liveness = liveness
        self._credential_ttl = credential_ttl
        self._token_endpoint = token_endpoint

    # -- verifying ----------------------------------------------------------------------------
    def verify_signature(self, token: str) -> VerifiedCredential:
        """Signature and claims only; follow with ``Liveness.check`` before trusting it."""
        return self._verifier.verify(token)

    def verify_live(self, token: str) -> VerifiedCredential:
        """Signature, claims, revocation, task active, agent active — or TokenInvalidError."""
        cred = self._verifier.verify(token)
        self._liveness.check(cred)
        return cred

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

    # -- the checks of a token request ----------------------------------------------------------
    def request_proof(self, header: str, *, access_token: str | None = None) -> DPoPProof:
        """The ``DPoP`` header of a token request (htm POST, htu the token endpoint)."""
        try:
            return self._dpop.verify(
                header, method="POST", uri=self._token_endpoint, access_token=access_token
            )
        except DPoPProofError as exc:
            self._audit.record(
                "task.refused",
                "anonymous",
                {"reason": "dpop_invalid", "detail": exc.detail.get("reason", "malformed")},
            )
            raise OAuthError("invalid_dpop_proof", exc.message) from None

    def verify_actor(self, actor_token: str, actor_proof: str | None) -> Parent:
        """Verify the parent's task credential (and its proof when it is DPoP-bound)."""
        try:
            cred = self.verify_signature(actor_token)
            live = self._liveness.check(cred)
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
                    uri=self._token_endpoint,
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

    # -- minting ------------------------------------------------------------------------------
    def mint(
        self,
        task: Task,
        *,
        subject: str,
        audience: Sequence[str],
        scope: Sequence[str],
        jkt: str | None,
        not_after: float,
    ) -> tuple[IssuedCredential, Credential]:
        """Sign a credential for ``task`` (bound to ``jkt`` when given) and the row recording
        it; the caller commits the row with its audit record."""
        issued = self._issuer.issue(
            subject=subject,
            audience=audience,
            task_id=task.id,
            scope=scope,
            ttl=self._credential_ttl,
            not_after=not_after,
            extra_claims=binding_claims(task, jkt),
        )
        credential = Credential(
            jti=issued.jti,
            task_id=task.id,
            agent_name=task.agent_name,
            issued_at=issued.issued_at,
            expires_at=issued.expires_at,
            kid=issued.kid,
        )
        return issued, credential

    def issue_record(
        self,
        credential: Credential,
        type: str,
        actor: str,
        audience: Sequence[str],
        scope: Sequence[str],
        **extra: Any,
    ) -> AuditDraft:
        """The audit record of an issued (or renewed) credential, to commit with its row."""
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

    # -- renewal ------------------------------------------------------------------------------
    def check_renewal(self, token: str, proof: DPoPProof | None) -> Renewal:
        """Whether ``token`` may be renewed with ``proof`` (the request's ``DPoP`` proof, if
        any): every refusal is audited as ``credential.renew_refused``."""
        try:
            cred = self.verify_signature(token)
            live = self._liveness.check(cred)
        except TokenInvalidError as exc:
            self._audit.record("credential.renew_refused", "anonymous", {"reason": exc.code})
            raise OAuthError("invalid_grant", "the task credential is not valid") from exc
        task = live.task
        if proof is not None and proof.ath is not None and proof.ath != access_token_hash(token):
            # a proof naming another access token is not a proof for this renewal
            self._refuse_renewal(cred, task, "dpop_wrong_token_hash")
            raise OAuthError("invalid_dpop_proof", "the DPoP proof is for another access token")
        if cred.jkt is not None and (proof is None or proof.jkt != cred.jkt):
            self._refuse_renewal(cred, task, "dpop_key_mismatch" if proof else "dpop_missing")
            raise OAuthError(
                "invalid_dpop_proof",
                "the credential is DPoP-bound: renew it with a proof signed by the same key",
            )
        # what the credential had, bounded by what the agent is entitled to now (ADR 0081)
        current = effective_scope(cred.scope, live.agent.entitlements)
        if not current:
            self._refuse_renewal(cred, task, "no_entitlement_left")
            raise OAuthError("invalid_scope", "the agent is no longer entitled to this scope")
        return Renewal(cred, task, current, proof)

    def renew(self, renewal: Renewal, wanted: tuple[str, ...] | None = None) -> Issued:
        """A new credential for the renewal's task: the scope it may keep, or ``wanted`` when
        that narrows it."""
        cred, task, current = renewal.credential, renewal.task, renewal.current
        scope = tuple(sorted(current))
        if wanted is not None:
            if not set(wanted) <= current or not wanted:
                raise OAuthError("invalid_scope", "a renewal may only keep or narrow the scope")
            scope = wanted
        jkt = renewal.proof.jkt if renewal.proof else None
        stored = self._store.fetch_task(task.id)
        issued, credential = self.mint(
            stored,
            subject=cred.subject,
            audience=cred.audience,
            scope=scope,
            jkt=jkt,
            not_after=task.expires_at,
        )
        renewed = self.issue_record(
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
        return Issued(
            issued.token, issued.expires_at - issued.issued_at, scope, stored, jkt is not None
        )

    def _refuse_renewal(self, cred: VerifiedCredential, task: LiveTask, reason: str) -> None:
        self._audit.record(
            "credential.renew_refused",
            cred.subject,
            {"reason": reason, "jti": cred.jti},
            agent=task.agent_name,
            task_id=task.id,
        )

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


def binding_claims(task: Task, jkt: str | None) -> dict[str, Any]:
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
