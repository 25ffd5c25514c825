"""Verification keys published by a Warden (``/.well-known/jwks.json``), for remote verifiers.

A resource server in front of agents (the MCP proxy over HTTP) verifies task credentials itself
— signature, issuer, its own audience, expiry — with ``TaskCredentialVerifier`` over these
keys; the PDP still checks revocation and live state on every decision. Only Ed25519 keys whose
``kid`` is their RFC 7638 thumbprint are taken (Warden names its keys that way); anything else
in the set is ignored. This key manager cannot sign.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from warden.errors import InvalidParameterError, TokenInvalidError
from warden.tokens import _jose
from warden.tokens.keys import SigningKey, kid_for

__all__ = ["PublishedKeys"]


class PublishedKeys:
    """A read-only key manager over a JWK Set; ``update`` swaps in a fresh set atomically."""

    def __init__(self, jwks: Mapping[str, Any]) -> None:
        self._public: dict[str, Ed25519PublicKey] = {}
        self.update(jwks)

    def update(self, jwks: Mapping[str, Any]) -> None:
        keys = jwks.get("keys") if isinstance(jwks, Mapping) else None
        if not isinstance(keys, list):
            raise InvalidParameterError("a JWK Set needs a `keys` array")
        public: dict[str, Ed25519PublicKey] = {}
        for jwk in keys:
            if not isinstance(jwk, Mapping) or jwk.get("kty") != "OKP":
                continue
            if jwk.get("crv") != "Ed25519" or not isinstance(jwk.get("x"), str):
                continue
            try:
                key = Ed25519PublicKey.from_public_bytes(_jose.b64url_decode(jwk["x"]))
            except (ValueError, TypeError, TokenInvalidError):
                continue
            kid = kid_for(key)
            if jwk.get("kid", kid) == kid:
                public[kid] = key
        self._public = public

    def public_key(self, kid: str) -> Ed25519PublicKey | None:
        return self._public.get(kid)

    def jwks(self) -> dict[str, Any]:
        return {
            "keys": [dict(_jose.ed25519_public_jwk(k), kid=kid) for kid, k in self._public.items()]
        }

    def current(self) -> SigningKey:
        raise InvalidParameterError("published keys verify only; they cannot sign")

    def rotate(self) -> SigningKey:
        raise InvalidParameterError("published keys verify only; they cannot rotate")
