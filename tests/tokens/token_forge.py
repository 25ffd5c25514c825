"""Build JWS Compact tokens by hand, to present the verifier with what an attacker could send.

Nothing here goes through Warden's issuer, so every header and claim is under the test's control.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

ISSUER = "https://warden.test"
AUDIENCE = "https://warden.test"
SUBJECT = "spiffe://example.org/agent/researcher"
START = 1_800_000_000.0


def good_claims(**overrides: Any) -> dict[str, Any]:
    """A claims set the verifier accepts (at START), to sign by hand."""
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": SUBJECT,
        "aud": AUDIENCE,
        "iat": int(START),
        "nbf": int(START),
        "exp": int(START) + 300,
        "jti": "b3Y2bXqPq0dQyI2n7mVt5w",
        "task": "task_0123456789abcdef01234567",
        "scope": "search read_file",
        "ver": 1,
    }
    claims.update(overrides)
    return claims


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def segment(document: Any) -> str:
    return b64(json.dumps(document, separators=(",", ":")).encode("utf-8"))


Signer = Callable[[bytes], bytes]


def forge(
    header: Any, claims: Any, sign: Signer | None = None, *, raw_payload: str | None = None
) -> str:
    """``header.claims.signature`` where ``sign`` gets the signing input (no signature if None)."""
    head = segment(header)
    body = raw_payload if raw_payload is not None else segment(claims)
    signing_input = f"{head}.{body}".encode("ascii")
    signature = sign(signing_input) if sign is not None else b""
    return f"{head}.{body}.{b64(signature)}"


def ed25519_signer(key: Ed25519PrivateKey) -> Signer:
    return key.sign


def hs256_signer(secret: bytes) -> Signer:
    return lambda data: hmac.new(secret, data, hashlib.sha256).digest()


def rs256_signer(key: rsa.RSAPrivateKey) -> Signer:
    return lambda data: key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def es256_signer(key: ec.EllipticCurvePrivateKey) -> Signer:
    def sign(data: bytes) -> bytes:
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    return sign


def replace_segment(token: str, index: int, value: str) -> str:
    parts = token.split(".")
    parts[index] = value
    return ".".join(parts)


def decode_segment(token: str, index: int) -> dict[str, Any]:
    part = token.split(".")[index]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded
