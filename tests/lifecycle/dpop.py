"""A DPoP client key for tests: makes RFC 9449 proofs (and bad ones on purpose)."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class ProofKey:
    """An ES256 (default) or EdDSA key held by an agent."""

    def __init__(self, alg: str = "ES256") -> None:
        self.alg = alg
        if alg == "ES256":
            self.private: Any = ec.generate_private_key(ec.SECP256R1())
            numbers = self.private.public_key().public_numbers()
            self.jwk = {
                "kty": "EC",
                "crv": "P-256",
                "x": _b64(numbers.x.to_bytes(32, "big")),
                "y": _b64(numbers.y.to_bytes(32, "big")),
            }
        else:
            self.private = ed25519.Ed25519PrivateKey.generate()
            raw = self.private.public_key().public_bytes_raw()
            self.jwk = {"kty": "OKP", "crv": "Ed25519", "x": _b64(raw)}

    @property
    def jkt(self) -> str:
        members = {"EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}[self.jwk["kty"]]
        canonical = json.dumps({m: self.jwk[m] for m in members}, separators=(",", ":"))
        return _b64(hashlib.sha256(canonical.encode()).digest())

    def proof(
        self,
        method: str,
        uri: str,
        *,
        token: str | None = None,
        iat: float | None = None,
        jti: str | None = None,
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        body: dict[str, Any] = {
            "jti": jti or secrets.token_urlsafe(12),
            "htm": method,
            "htu": uri,
            "iat": int(time.time() if iat is None else iat),
            **claims,
        }
        if token is not None:
            body["ath"] = _b64(hashlib.sha256(token.encode()).digest())
        head = {"typ": "dpop+jwt", "jwk": self.jwk, **(headers or {})}
        return jwt.encode(body, self.private, algorithm=self.alg, headers=head)
