"""Task credentials: issue and verify short-lived EdDSA JWTs, and the keys that sign them.

``tokens._jose`` is the only module in Warden that imports the JOSE library (PyJWT); everything
else goes through the names re-exported here.
"""

from __future__ import annotations

from typing import Any

from warden.tokens import _jose
from warden.tokens.issuer import (
    FORMAT_VERSION,
    REGISTERED_CLAIMS,
    TOKEN_TYPE,
    IssuedCredential,
    TaskCredentialIssuer,
)
from warden.tokens.keys import DiskKeyManager, KeyManager, MemoryKeyManager, SigningKey, kid_for
from warden.tokens.svid import DevTrustDomain
from warden.tokens.verifier import (
    FORBIDDEN_HEADERS,
    REQUIRED_CLAIMS,
    TaskCredentialVerifier,
    VerifiedCredential,
)

__all__ = [
    "FORBIDDEN_HEADERS",
    "FORMAT_VERSION",
    "REGISTERED_CLAIMS",
    "REQUIRED_CLAIMS",
    "TOKEN_TYPE",
    "DevTrustDomain",
    "DiskKeyManager",
    "IssuedCredential",
    "KeyManager",
    "MemoryKeyManager",
    "SigningKey",
    "TaskCredentialIssuer",
    "TaskCredentialVerifier",
    "VerifiedCredential",
    "jose_failure_reason",
    "jwk_thumbprint",
    "jwk_to_key",
    "kid_for",
    "peek_header",
    "peek_unverified",
    "verify_signature",
]


def peek_unverified(token: str) -> dict[str, Any]:
    """The claims of a JWS Compact token WITHOUT verification (logging, routing; never trust).

    Raises TokenInvalidError when the token is not three base64url segments with a JSON object
    payload. No size limit here: callers bound the input first.
    """
    return _jose.unverified_claims(token)


def peek_header(token: str) -> dict[str, Any]:
    """The JOSE header of a JWS Compact token WITHOUT verification (pick a key, refuse early)."""
    return _jose.unverified_header(token)


jose_failure_reason = _jose.jose_failure_reason
jwk_to_key = _jose.jwk_to_key
verify_signature = _jose.verify_signature
jwk_thumbprint = _jose.jwk_thumbprint
