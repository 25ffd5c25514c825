"""Audience-bound downstream tokens: the JWT lease kind, for one named HTTP service.

A downstream token is an RFC 9068-style access token for exactly one service, signed with the
same keys as task credentials (so the service verifies it with Warden's JWKS):

    header  {"alg": "EdDSA", "kid": <thumbprint>, "typ": "at+jwt"}
    claims  iss, sub (the agent's SPIFFE ID), aud (the service: one string), iat, nbf, exp, jti,
            client_id (the agent's name), scope, task, lease (the lease id), and when they
            apply act (the delegation chain) and cnf (the task credential's DPoP key)

It deliberately has no ``ver`` claim: a task credential must have one, so a downstream token can
never pass as a task credential (and a task credential's audience is never a service's).
Services that want revocation before ``exp`` introspect it (``/oauth2/introspect``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from warden.core.clock import Clock
from warden.errors import (
    AlgorithmNotAllowedError,
    ForbiddenHeaderError,
    InvalidParameterError,
    IssuerMismatchError,
    KeyNotFoundError,
    TokenExpiredError,
    TokenInvalidError,
)
from warden.tokens import _jose
from warden.tokens.issuer import TOKEN_TYPE
from warden.tokens.keys import ALGORITHM, KeyManager
from warden.tokens.verifier import FORBIDDEN_HEADERS

__all__ = ["DownstreamToken", "DownstreamTokenIssuer", "verify_downstream"]


@dataclass(frozen=True, slots=True)
class DownstreamToken:
    token: str = field(repr=False)
    jti: str
    kid: str
    issued_at: float
    expires_at: float


class DownstreamTokenIssuer:
    def __init__(self, keys: KeyManager, issuer: str, clock: Clock) -> None:
        self._keys = keys
        self._issuer = issuer
        self._clock = clock

    @property
    def current_kid(self) -> str:
        return self._keys.current().kid

    def issue(
        self,
        *,
        jti: str,
        subject: str,
        audience: str,
        client_id: str,
        scope: str,
        task_id: str,
        lease_id: str,
        not_after: float,
        extra_claims: Mapping[str, Any] | None = None,
    ) -> DownstreamToken:
        issued_at = int(self._clock.now())
        expires_at = math.floor(not_after)
        if expires_at <= issued_at:
            raise InvalidParameterError("the token would expire at or before its issue time")
        key = self._keys.current()
        claims: dict[str, Any] = {
            **dict(extra_claims or {}),
            "iss": self._issuer,
            "sub": subject,
            "aud": audience,
            "iat": issued_at,
            "nbf": issued_at,
            "exp": expires_at,
            "jti": jti,
            "client_id": client_id,
            "scope": scope,
            "task": task_id,
            "lease": lease_id,
        }
        token = _jose.encode(
            claims, key.private_key, alg=ALGORITHM, headers={"typ": TOKEN_TYPE, "kid": key.kid}
        )
        return DownstreamToken(token, jti, key.kid, float(issued_at), float(expires_at))


def verify_downstream(
    token: str, *, keys: KeyManager, issuer: str, now: float, max_bytes: int = 8192
) -> dict[str, Any]:
    """Signature, header rules, ``iss``, ``exp`` and the ``lease`` claim; returns the claims.

    The audience is not checked here: this is for Warden's own introspection (the caller is an
    authenticated PEP that may look at any service's token).
    """
    if not isinstance(token, str) or len(token) > max_bytes or not token.isascii():
        raise TokenInvalidError("malformed token")
    header_seg, payload_seg, signature_seg = _jose.split(token)
    header = _jose.decode_json_segment(header_seg, "header")
    if header.get("alg") != ALGORITHM:
        raise AlgorithmNotAllowedError("algorithm not allowed")
    if not FORBIDDEN_HEADERS.isdisjoint(header):
        raise ForbiddenHeaderError("forbidden header")
    if header.get("typ") != TOKEN_TYPE:
        raise TokenInvalidError("not an access token")
    kid = header.get("kid")
    key = keys.public_key(kid) if isinstance(kid, str) else None
    if key is None:
        raise KeyNotFoundError("unknown key id")
    _jose.verify_ed25519(key, f"{header_seg}.{payload_seg}".encode("ascii"), signature_seg)
    claims = _jose.decode_json_segment(payload_seg, "payload")
    if claims.get("iss") != issuer:
        raise IssuerMismatchError("issued by another issuer")
    exp = claims.get("exp")
    if type(exp) is not int and type(exp) is not float:
        raise TokenInvalidError("claim `exp` must be a number")
    if now >= exp:
        raise TokenExpiredError("token has expired")
    if not isinstance(claims.get("lease"), str) or "ver" in claims:
        raise TokenInvalidError("not a downstream token")
    return claims
