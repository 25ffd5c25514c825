"""Workload attestation: verify what a workload is before it may ask for anything.

``AttestorRegistry`` routes an RFC 8693 ``subject_token`` to the ``Attestor`` for its token type;
each attestor returns a ``WorkloadIdentity`` or raises ``AttestationError`` with a stable
``detail["reason"]``. Methods so far: SPIFFE JWT-SVID (``spiffe_jwt.JWTSVIDAttestor``).
"""

from __future__ import annotations

from warden.attestation.base import (
    Attestor,
    AttestorRegistry,
    Channel,
    WorkloadIdentity,
    attestation_error,
    evidence_hash,
)
from warden.attestation.spiffe_jwt import (
    TOKEN_TYPE_JWT,
    TOKEN_TYPE_JWT_SVID,
    JWTSVIDAttestor,
    from_config,
)

__all__ = [
    "TOKEN_TYPE_JWT",
    "TOKEN_TYPE_JWT_SVID",
    "Attestor",
    "AttestorRegistry",
    "Channel",
    "JWTSVIDAttestor",
    "WorkloadIdentity",
    "attestation_error",
    "evidence_hash",
    "from_config",
]
