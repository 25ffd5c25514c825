"""The attestation seam: evidence of what a workload is, turned into a ``WorkloadIdentity``.

An ``Attestor`` verifies one kind of evidence. The token endpoint receives evidence as an RFC 8693
``subject_token`` with a ``subject_token_type`` URI, and ``AttestorRegistry`` routes it to the
attestor that declared that type. Adding a method is writing one class with ``method``,
``token_types`` and ``attest`` and registering it:

    method      token types (RFC 8693 ``subject_token_type``)                  module
    jwt_svid    urn:ietf:params:oauth:token-type:jwt, …:jwt-svid                 spiffe_jwt.py
    oidc, k8s   urn:ietf:params:oauth:token-type:id_token, …:jwt                 oidc.py
    x509_svid   urn:warden:params:oauth:token-type:tls-client-certificate        x509_svid.py
                (the mTLS peer certificate of the request, from ``Channel``)
    unix        (the local workload API socket; ends in a Warden JWT-SVID)       unix.py
    join_token  urn:warden:params:oauth:token-type:join-token                    join_token.py

Two attestors cannot claim the same token type. ``…:jwt`` is shared by JWT-SVIDs and OIDC
tokens: ``jwt_router.JWTRouter`` owns it and routes on the unverified ``iss`` (a configured OIDC
issuer) before the chosen attestor verifies everything.

Every identity carries ``selectors`` (``warden.core.selectors``): what registration entries are
matched against. An identity may instead be *bound* to one agent (``agent``): a join token
names its agent, and a JWT-SVID of Warden's own trust domain was issued to one agent after its
entries matched on the workload socket.

Failures raise ``AttestationError`` whose ``detail["reason"]`` is a stable snake_case string
(for the audit log and metrics; callers outside get one opaque error). Reasons used so far:
``unsupported_token_type``, ``too_large``, ``malformed``, ``unsupported_algorithm``,
``forbidden_header``, ``missing_kid``, ``missing_claim``, ``invalid_spiffe_id``,
``unknown_trust_domain``, ``unknown_key``, ``bad_signature``, ``expired``, ``not_yet_valid``,
``wrong_audience``, ``attestor_error``.

Evidence is a secret: attestors never log it, and a ``WorkloadIdentity`` carries only its
SHA-256 (``evidence_hash``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from warden.errors import AttestationError, InvalidParameterError

__all__ = [
    "Attestor",
    "AttestorRegistry",
    "Channel",
    "WorkloadIdentity",
    "attestation_error",
    "evidence_hash",
]


@dataclass(frozen=True, slots=True)
class WorkloadIdentity:
    """A verified workload identity.

    ``claims`` are the verified claims of the evidence (for audit and policy); never the evidence
    itself. ``expires_at`` is when the evidence stops being valid (None when it has no expiry).
    ``spiffe_id``/``trust_domain`` are None for evidence that names no SPIFFE ID (OIDC, join
    tokens). ``selectors`` are matched against registration entries; ``agent`` binds the
    identity to one agent instead (see the module docstring). ``details`` are extra facts for
    the record (e.g. the attestation a Warden-issued SVID stands for).
    """

    spiffe_id: str | None
    method: str
    evidence_hash: str
    trust_domain: str | None
    expires_at: float | None
    claims: dict[str, Any]
    selectors: frozenset[str] = frozenset()
    agent: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def subject(self) -> str:
        """Who this is, for audit records: the SPIFFE ID, else ``<iss>#<sub>``, else the method."""
        if self.spiffe_id:
            return self.spiffe_id
        iss, sub = self.claims.get("iss"), self.claims.get("sub")
        if isinstance(iss, str) and isinstance(sub, str):
            return f"{iss}#{sub}"[:300]
        return f"{self.method}:{self.agent or 'unknown'}"


@dataclass(frozen=True, slots=True)
class Channel:
    """What the transport proved about the caller, beside the token.

    ``tls_client_chain``: the DER certificates of a TLS client that completed the handshake
    (leaf first; it proved possession of the leaf's key). Empty when the request was not mTLS.
    """

    tls_client_chain: tuple[bytes, ...] = ()


@runtime_checkable
class Attestor(Protocol):
    """Verifies one kind of workload evidence."""

    @property
    def method(self) -> str:
        """Stable name of the method (``jwt_svid``), recorded with every identity."""
        ...

    @property
    def token_types(self) -> frozenset[str]:
        """The RFC 8693 token type URIs this attestor accepts."""
        ...

    def attest(
        self, token: str, token_type: str, channel: Channel | None = None
    ) -> WorkloadIdentity:
        """Verify ``token`` or raise ``AttestationError`` with ``detail={"reason": ...}``."""
        ...


def evidence_hash(evidence: str | bytes) -> str:
    """SHA-256 hex of the presented evidence: what audit records keep instead of the evidence."""
    data = evidence.encode("utf-8") if isinstance(evidence, str) else evidence
    return hashlib.sha256(data).hexdigest()


def attestation_error(reason: str, message: str, **detail: Any) -> AttestationError:
    """An ``AttestationError`` with ``detail["reason"] = reason`` (plus any extra detail)."""
    return AttestationError(message, detail={"reason": reason, **detail})


class AttestorRegistry:
    """Routes evidence to the attestor registered for its token type."""

    def __init__(self, attestors: Iterable[Attestor] = ()) -> None:
        self._by_type: dict[str, Attestor] = {}
        for attestor in attestors:
            self.register(attestor)

    def register(self, attestor: Attestor) -> None:
        """Add an attestor. InvalidParameterError if one of its token types is already taken."""
        types = frozenset(attestor.token_types)
        if not types:
            raise InvalidParameterError(f"attestor `{attestor.method}` accepts no token type")
        taken = sorted(types.intersection(self._by_type))
        if taken:
            owner = self._by_type[taken[0]].method
            raise InvalidParameterError(
                f"token type `{taken[0]}` is already handled by attestor `{owner}`"
            )
        for token_type in types:
            self._by_type[token_type] = attestor

    @property
    def token_types(self) -> frozenset[str]:
        """Every token type some attestor accepts (for metadata and error messages)."""
        return frozenset(self._by_type)

    @property
    def methods(self) -> frozenset[str]:
        return frozenset(attestor.method for attestor in self._by_type.values())

    def attest(
        self, token: str, token_type: str, channel: Channel | None = None
    ) -> WorkloadIdentity:
        """Verify ``token`` with the attestor for ``token_type``; fail closed on anything else.

        Unknown type → reason ``unsupported_token_type``. An attestor raising anything other
        than AttestationError is a bug; it still becomes an AttestationError (reason
        ``attestor_error``), never an identity.
        """
        attestor = self._by_type.get(token_type) if isinstance(token_type, str) else None
        if attestor is None:
            raise attestation_error(
                "unsupported_token_type",
                f"token type `{str(token_type)[:100]}` is not accepted for attestation",
            )
        try:
            return attestor.attest(token, token_type, channel)
        except AttestationError:
            raise
        except Exception as exc:
            raise attestation_error(
                "attestor_error", f"attestor `{attestor.method}` failed unexpectedly"
            ) from exc
