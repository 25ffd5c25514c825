"""Token introspection (RFC 7662) and revocation (RFC 7009) for task credentials and JWT leases.

Both endpoints require an authenticated caller (``api.deps.require_client``). Introspection says
``{"active": false}`` and nothing else for anything that is not a live credential or lease: unknown,
malformed, signed by someone else, expired, revoked, its task ended, its agent suspended. An
active answer carries the standard members plus Warden's ``task``, ``act`` and ``cnf``, and
``warden`` with the delegation chain. Revocation answers the same way for every token (RFC 7009
§2.2): it revokes a live credential (or lease) and ignores anything else.
"""

from __future__ import annotations

from typing import Any

from warden.core.clock import Clock
from warden.core.model import LeaseKind, LeaseState, TaskStatus
from warden.core.ports import Store
from warden.errors import NotFoundError, TokenInvalidError
from warden.service.auditing import Auditor
from warden.service.credentials import CredentialService
from warden.service.leases import LeaseService
from warden.service.liveness import Liveness
from warden.tokens import peek_unverified
from warden.tokens.downstream import verify_downstream
from warden.tokens.keys import KeyManager

INACTIVE: dict[str, Any] = {"active": False}
MAX_TOKEN = 8192


class IntrospectionService:
    def __init__(
        self,
        store: Store,
        credentials: CredentialService,
        liveness: Liveness,
        leases: LeaseService,
        keys: KeyManager,
        auditor: Auditor,
        clock: Clock,
        *,
        issuer: str,
    ) -> None:
        self._store = store
        self._credentials = credentials
        self._liveness = liveness
        self._leases = leases
        self._keys = keys
        self._audit = auditor
        self._clock = clock
        self._issuer = issuer

    def _kind(self, token: str) -> str | None:
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN:
            return None
        try:
            claims = peek_unverified(token)
        except TokenInvalidError:
            return None
        if "ver" in claims:
            return "credential"
        if "lease" in claims:
            return "lease"
        return None

    # -- RFC 7662 ------------------------------------------------------------------------------
    def introspect(self, token: str, *, caller: str) -> dict[str, Any]:
        kind = self._kind(token)
        answer = INACTIVE
        detail = "unrecognised"
        try:
            if kind == "credential":
                answer = self._credential(token)
            elif kind == "lease":
                answer = self._lease(token)
            detail = "active" if answer.get("active") else "inactive"
        except TokenInvalidError as exc:
            detail = exc.code
            answer = INACTIVE
        self._audit.record(
            "credential.introspected",
            caller,
            {"active": bool(answer.get("active")), "detail": detail, "jti": answer.get("jti")},
            agent=answer.get("client_id"),
            task_id=answer.get("task"),
        )
        return dict(answer)

    def _credential(self, token: str) -> dict[str, Any]:
        cred = self._credentials.verify_signature(token)
        live = self._liveness.check(cred)
        claims = cred.claims
        out: dict[str, Any] = {
            "active": True,
            "iss": claims["iss"],
            "sub": cred.subject,
            "aud": claims["aud"],
            "exp": claims["exp"],
            "iat": claims["iat"],
            "jti": cred.jti,
            "scope": claims["scope"],
            "client_id": live.agent.name,
            "token_type": "DPoP" if cred.jkt else "Bearer",
            "task": cred.task_id,
            "warden": {
                "kind": "task_credential",
                "chain": list(live.task.chain),
                "depth": live.task.depth,
                "on_behalf_of": live.task.on_behalf_of,
                "parent_id": live.task.parent_id,
            },
        }
        if "nbf" in claims:
            out["nbf"] = claims["nbf"]
        if "act" in claims:
            out["act"] = claims["act"]
        if cred.jkt:
            out["cnf"] = {"jkt": cred.jkt}
        return out

    def _lease(self, token: str) -> dict[str, Any]:
        claims = verify_downstream(
            token, keys=self._keys, issuer=self._issuer, now=self._clock.now()
        )
        try:
            lease = self._store.fetch_lease(str(claims["lease"]))
            task = self._store.fetch_task(lease.task_id)
        except NotFoundError:
            return INACTIVE
        if (
            lease.kind is not LeaseKind.JWT
            or lease.state is not LeaseState.ACTIVE
            or lease.principal != claims.get("jti")
            or task.status is not TaskStatus.ACTIVE
            or self._liveness.active_agent(task.spiffe_id) is None
        ):
            return INACTIVE
        standard = ("iss", "sub", "aud", "exp", "iat", "jti", "scope")
        out: dict[str, Any] = {
            "active": True,
            **{k: claims[k] for k in standard if k in claims},
            "client_id": lease.agent_name,
            "token_type": "DPoP" if "cnf" in claims else "Bearer",
            "task": task.id,
            "warden": {"kind": "lease", "lease": lease.id, "chain": list(task.chain)},
        }
        for extra in ("act", "cnf", "nbf"):
            if extra in claims:
                out[extra] = claims[extra]
        return out

    # -- RFC 7009 ------------------------------------------------------------------------------
    def revoke(self, token: str, *, caller: str) -> None:
        kind = self._kind(token)
        if kind == "credential":
            self._credentials.revoke_credential(token, actor=caller)
            return
        if kind == "lease":
            try:
                claims = verify_downstream(
                    token, keys=self._keys, issuer=self._issuer, now=self._clock.now()
                )
                lease = self._store.fetch_lease(str(claims["lease"]))
            except (TokenInvalidError, NotFoundError):
                self._audit.record("credential.revoke_ignored", caller, {"reason": "lease_unknown"})
                return
            if lease.principal == claims.get("jti"):
                self._leases.revoke(lease, caller, "revoked by request (RFC 7009)")
            return
        self._audit.record("credential.revoke_ignored", caller, {"reason": "unrecognised"})
