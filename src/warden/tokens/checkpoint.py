"""Signed audit checkpoints: a compact JWS (EdDSA) over ``{seq, head, ts}`` of the audit chain.

Signed with Warden's current signing key (``kid`` in the header), so anyone holding the public
JWKS (``GET /.well-known/jwks.json``) can check a checkpoint without trusting Warden's database.
Header ``typ`` is ``warden-audit-checkpoint+jwt``; claims::

    {"iss": <issuer>, "seq": <records in the chain>, "head": <hash of record seq>,
     "ts": <epoch seconds, float>, "iat": <int>, "v": 1}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from warden.errors import TokenInvalidError
from warden.tokens import _jose
from warden.tokens.keys import ALGORITHM, SigningKey

CHECKPOINT_TYP = "warden-audit-checkpoint+jwt"
VERSION = 1
MAX_CHECKPOINT_CHARS = 4096


def sign_checkpoint(key: SigningKey, *, issuer: str, seq: int, head: str, ts: float) -> str:
    claims = {"iss": issuer, "seq": seq, "head": head, "ts": ts, "iat": int(ts), "v": VERSION}
    return _jose.encode(
        claims, key.private_key, alg=ALGORITHM, headers={"typ": CHECKPOINT_TYP, "kid": key.kid}
    )


def verify_checkpoint(token: str, jwks: Mapping[str, Any]) -> dict[str, Any]:
    """The verified claims of a checkpoint, or TokenInvalidError naming what is wrong.

    Only EdDSA over a key present in ``jwks`` (by ``kid``) is accepted; ``jku``/``x5u``/``jwk``
    headers are never followed.
    """
    claims = _jose.verify_eddsa_from_jwks(
        token, jwks, typ=CHECKPOINT_TYP, what="audit checkpoint", max_chars=MAX_CHECKPOINT_CHARS
    )
    if claims.get("v") != VERSION or not isinstance(claims.get("seq"), int):
        raise TokenInvalidError("checkpoint claims are malformed")
    if not isinstance(claims.get("head"), str) or not isinstance(claims.get("ts"), int | float):
        raise TokenInvalidError("checkpoint claims are malformed")
    return claims


def load_jwks(text: str) -> dict[str, Any]:
    """Parse a JWK Set document (ValueError when it is not one)."""
    data = json.loads(text)
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise ValueError("not a jwk set: expected an object with `keys`")
    return data
