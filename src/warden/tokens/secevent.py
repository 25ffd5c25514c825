"""Security Event Tokens (RFC 8417) as SSF 1.0 profiles them, signed with Warden's keys.

A SET is a compact JWS (EdDSA, ``kid`` of the current signing key, ``typ: secevent+jwt``) whose
claims are ``iss``, ``jti``, ``iat``, ``aud``, ``sub_id`` (an RFC 9493 subject identifier),
``events`` (exactly one event type URI → its payload) and, when known, ``txn``. Anyone holding
the published JWKS (``/.well-known/jwks.json``) verifies it; ``verify_set`` is the receiver side
the SDK and the MCP proxy use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from warden.errors import TokenInvalidError
from warden.tokens import _jose
from warden.tokens.keys import ALGORITHM, SigningKey

SET_TYP = "secevent+jwt"
MAX_SET_CHARS = 16384


def sign_set(
    key: SigningKey,
    *,
    issuer: str,
    audience: str,
    jti: str,
    iat: float,
    subject: Mapping[str, Any],
    event_type: str,
    event: Mapping[str, Any],
    txn: str | None = None,
) -> str:
    claims: dict[str, Any] = {
        "iss": issuer,
        "jti": jti,
        "iat": int(iat),
        "aud": audience,
        "sub_id": dict(subject),
        "events": {event_type: dict(event)},
    }
    if txn:
        claims["txn"] = txn
    return _jose.encode(
        claims, key.private_key, alg=ALGORITHM, headers={"typ": SET_TYP, "kid": key.kid}
    )


def kid_of(token: str) -> str | None:
    kid = _jose.unverified_header(token).get("kid")
    return kid if isinstance(kid, str) else None


def resign_set(token: str, key: SigningKey) -> str:
    """The same SET (same claims, same ``jti``) signed with ``key``: for a SET queued under a key
    that has since been retired from the JWKS, so its receiver can still verify it."""
    return _jose.encode(
        _jose.unverified_claims(token),
        key.private_key,
        alg=ALGORITHM,
        headers={"typ": SET_TYP, "kid": key.kid},
    )


def verify_set(
    token: str, jwks: Mapping[str, Any], *, issuer: str, audience: str | None = None
) -> dict[str, Any]:
    """The verified claims of a SET, or TokenInvalidError naming what is wrong.

    Only EdDSA over a key of ``jwks`` (by ``kid``); ``jku``/``x5u``/``jwk`` headers are never
    followed; ``iss`` must match; ``aud`` must match when given; exactly one event.
    """
    claims = _jose.verify_eddsa_from_jwks(
        token, jwks, typ=SET_TYP, what="security event token", max_chars=MAX_SET_CHARS
    )
    if claims.get("iss") != issuer:
        raise TokenInvalidError("security event token from another issuer")
    if audience is not None and claims.get("aud") != audience:
        raise TokenInvalidError("security event token for another audience")
    events = claims.get("events")
    if not isinstance(events, dict) or len(events) != 1:
        raise TokenInvalidError("a security event token carries exactly one event")
    if not isinstance(claims.get("jti"), str) or not isinstance(claims.get("sub_id"), dict):
        raise TokenInvalidError("security event token claims are malformed")
    return claims
