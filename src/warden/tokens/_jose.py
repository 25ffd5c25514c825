"""Private JOSE adapter: the only module in Warden that imports PyJWT.

Two halves:

* **Signing** (``encode``) goes through PyJWT: issuance is not on the decision hot path and a
  well-reviewed encoder is worth more than a few microseconds.
* **Verification primitives** (``split``, ``b64url_decode``, ``decode_json_segment``,
  ``verify_ed25519``) are a deliberately small, strict JWS Compact path used by
  ``TaskCredentialVerifier``. The verifier accepts exactly one algorithm (EdDSA over Ed25519)
  with a pre-built ``Ed25519PublicKey``, so the generic machinery PyJWT runs per call (algorithm
  registry, option merging, claim validators we re-do anyway) is pure overhead: it costs about
  40-50 µs per token, about as much as the signature check itself (``reference/performance.md``
  T2). The strictness rules here are stricter than PyJWT's: no padding, no characters outside
  the base64url alphabet, and a canonical (non-malleable) signature encoding.

Also here: RFC 7638 thumbprints and public JWKs for the key types Warden uses, and
``jose_failure_reason`` which names a PyJWT failure (raised inside py-spiffe, say) without the
caller importing PyJWT.

Nothing in this module logs; tokens never appear in error messages.
"""

from __future__ import annotations

import binascii
import hashlib
import json
from collections.abc import Mapping
from typing import Any, NoReturn

import jwt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from warden.errors import TokenInvalidError

__all__ = [
    "b64url_decode",
    "b64url_encode",
    "decode_json_segment",
    "ec_public_jwk",
    "ed25519_key_from_jwk",
    "ed25519_public_jwk",
    "encode",
    "jose_failure_reason",
    "jwk_thumbprint",
    "split",
    "unverified_claims",
    "unverified_header",
    "verify_ed25519",
    "verify_eddsa_from_jwks",
    "verify_with_jwk",
]

_TO_STANDARD_ALPHABET = bytes.maketrans(b"-_", b"+/")
_TO_URL_ALPHABET = str.maketrans("+/", "-_")
# An Ed25519 signature is 64 bytes: 86 base64url characters, the last of which carries only two
# data bits. Its four low bits must be zero, or the same signature has 16 spellings.
_ED25519_SIG_CHARS = 86
_ED25519_SIG_LAST = frozenset("AQgw")
# RFC 7638 §3.2: the required members of each key type, in lexicographic order.
_THUMBPRINT_MEMBERS = {
    "OKP": ("crv", "kty", "x"),
    "EC": ("crv", "kty", "x", "y"),
    "RSA": ("e", "kty", "n"),
}
_EC_CURVES = {"secp256r1": ("P-256", 32), "secp384r1": ("P-384", 48), "secp521r1": ("P-521", 66)}


def _reject_constant(name: str) -> NoReturn:
    # json.loads accepts NaN / Infinity, which are not JSON (RFC 8259) and would make every
    # numeric comparison on a time claim false.
    raise ValueError(f"`{name}` is not a json number")


# One decoder built once: passing parse_constant to json.loads would build one per call.
_JSON = json.JSONDecoder(parse_constant=_reject_constant)


def b64url_encode(data: bytes) -> str:
    """Base64url without padding (RFC 7515 §2)."""
    encoded = binascii.b2a_base64(data, newline=False).decode("ascii")
    return encoded.rstrip("=").translate(_TO_URL_ALPHABET)


def b64url_decode(segment: str) -> bytes:
    """Strict base64url decoding: the url-safe alphabet only, no padding, no whitespace."""
    # a2b_base64 reads the standard alphabet and padding; only the url-safe alphabet is valid here
    if "=" in segment or "+" in segment or "/" in segment:
        raise TokenInvalidError("malformed token: invalid base64url")
    try:
        data = segment.encode("ascii").translate(_TO_STANDARD_ALPHABET)
        return binascii.a2b_base64(data + b"=" * (-len(data) % 4), strict_mode=True)
    except (binascii.Error, ValueError):
        raise TokenInvalidError("malformed token: invalid base64url") from None


def split(token: str) -> tuple[str, str, str]:
    """Split a JWS Compact Serialization into its three segments."""
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenInvalidError("malformed token: expected three dot-separated segments")
    return parts[0], parts[1], parts[2]


def decode_json_segment(segment: str, what: str) -> dict[str, Any]:
    """Decode one segment into a JSON object (the header or the claims set)."""
    raw = b64url_decode(segment)
    try:
        value = _JSON.decode(raw.decode("utf-8"))  # RFC 8259 §8.1: UTF-8 only
    except (ValueError, RecursionError):
        raise TokenInvalidError(f"malformed token: {what} is not valid json") from None
    if type(value) is not dict:
        raise TokenInvalidError(f"malformed token: {what} is not a json object")
    return value


def verify_ed25519(key: ed25519.Ed25519PublicKey, signing_input: bytes, signature: str) -> None:
    """Check an EdDSA (Ed25519) JWS signature segment over ``signing_input``."""
    if len(signature) != _ED25519_SIG_CHARS or signature[-1] not in _ED25519_SIG_LAST:
        raise TokenInvalidError("invalid signature")
    try:
        key.verify(b64url_decode(signature), signing_input)
    except (InvalidSignature, TokenInvalidError):
        raise TokenInvalidError("invalid signature") from None


def verify_eddsa_from_jwks(
    token: str, jwks: Mapping[str, Any], *, typ: str, what: str, max_chars: int
) -> dict[str, Any]:
    """The payload of a compact EdDSA JWS of type ``typ`` signed by a key of ``jwks`` (by
    ``kid``), or TokenInvalidError naming ``what`` is wrong. ``jku``/``x5u``/``jwk`` headers
    are never followed: only keys already in ``jwks`` count."""
    if not isinstance(token, str) or len(token) > max_chars:
        raise TokenInvalidError(f"malformed {what}")
    head_seg, payload_seg, signature = split(token)
    header = decode_json_segment(head_seg, "header")
    if header.get("alg") != "EdDSA":
        raise TokenInvalidError(f"{what} algorithm must be EdDSA")
    if header.get("typ") != typ:
        raise TokenInvalidError(f"not a {what} (typ)")
    kid = header.get("kid")
    jwk = next(
        (k for k in jwks.get("keys", []) if isinstance(k, dict) and k.get("kid") == kid), None
    )
    if jwk is None:
        raise TokenInvalidError(f"{what} key `{str(kid)[:64]}` is not in the jwks")
    try:
        public = ed25519_key_from_jwk(jwk)
    except ValueError as exc:
        raise TokenInvalidError(f"{what} key `{str(kid)[:64]}`: {exc}") from None
    verify_ed25519(public, f"{head_seg}.{payload_seg}".encode("ascii"), signature)
    return decode_json_segment(payload_seg, "payload")


def unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header, NOT verified. For routing (kid, alg) and logging only."""
    return decode_json_segment(split(token)[0], "header")


def unverified_claims(token: str) -> dict[str, Any]:
    """The claims set, NOT verified. For routing and logging only, never for a decision."""
    return decode_json_segment(split(token)[1], "payload")


SigningKeyTypes = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def encode(
    claims: Mapping[str, Any], key: SigningKeyTypes, *, alg: str, headers: Mapping[str, Any]
) -> str:
    """Sign ``claims`` as a JWS Compact token (PyJWT). ``headers`` may set ``typ`` and ``kid``.

    Raises TypeError when a claim is not JSON-serialisable.
    """
    return jwt.encode(dict(claims), key, algorithm=alg, headers=dict(headers))


def ed25519_public_jwk(key: ed25519.Ed25519PublicKey) -> dict[str, str]:
    """The RFC 8037 public JWK (``kty``, ``crv``, ``x``) of an Ed25519 key."""
    raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(raw)}


def ed25519_key_from_jwk(jwk: Mapping[str, Any]) -> ed25519.Ed25519PublicKey:
    """The Ed25519 public key of an RFC 8037 OKP JWK (ValueError for anything else)."""
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or not isinstance(jwk.get("x"), str):
        raise ValueError("not an Ed25519 public jwk")
    try:
        raw = b64url_decode(jwk["x"])
    except TokenInvalidError:
        raise ValueError("jwk `x` is not base64url") from None
    if len(raw) != 32:
        raise ValueError("jwk `x` is not a 32-byte Ed25519 key")
    return ed25519.Ed25519PublicKey.from_public_bytes(raw)


def ec_public_jwk(key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    """The RFC 7518 §6.2 public JWK (``kty``, ``crv``, ``x``, ``y``) of a NIST P-curve key."""
    try:
        crv, size = _EC_CURVES[key.curve.name]
    except KeyError:
        raise ValueError(f"unsupported curve `{key.curve.name}`") from None
    numbers = key.public_numbers()
    return {
        "kty": "EC",
        "crv": crv,
        "x": b64url_encode(numbers.x.to_bytes(size, "big")),
        "y": b64url_encode(numbers.y.to_bytes(size, "big")),
    }


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url) over the key type's required members."""
    members = _THUMBPRINT_MEMBERS.get(jwk.get("kty", ""))
    if members is None:
        raise ValueError(f"unsupported key type `{jwk.get('kty')}`")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return b64url_encode(hashlib.sha256(canonical.encode("utf-8")).digest())


# JWK members that only private (or symmetric) keys have (RFC 7518 §6.2.2, §6.3.2, §6.4).
_PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_JWK_KTY_FOR_ALG = {
    "ES256": "EC",
    "ES384": "EC",
    "EdDSA": "OKP",
    "RS256": "RSA",
    "PS256": "RSA",
}


def verify_with_jwk(token: str, jwk: Mapping[str, Any], alg: str) -> dict[str, Any]:
    """Verify a compact JWS with a public JWK carried alongside it (DPoP proofs); return claims.

    ``alg`` must be one of the asymmetric algorithms above (the caller has already checked it
    against its own allow-list); the JWK must be a public key of the matching type. Raises
    TokenInvalidError (``detail["reason"]``: bad_key or bad_signature) on any failure.
    """
    kty = _JWK_KTY_FOR_ALG.get(alg)
    if kty is None or jwk.get("kty") != kty or not _PRIVATE_JWK_MEMBERS.isdisjoint(jwk):
        raise TokenInvalidError(
            "the key is not a public key for the algorithm", detail={"reason": "bad_key"}
        )
    try:
        key = jwt.PyJWK(dict(jwk), algorithm=alg).key
    except (jwt.PyJWTError, ValueError, TypeError, KeyError):
        raise TokenInvalidError("the key cannot be used", detail={"reason": "bad_key"}) from None
    try:
        decoded = jwt.PyJWS().decode_complete(token, key=key, algorithms=[alg])
    except (jwt.PyJWTError, ValueError, TypeError):
        raise TokenInvalidError("invalid signature", detail={"reason": "bad_signature"}) from None
    try:
        value = _JSON.decode(decoded["payload"].decode("utf-8"))
    except (ValueError, RecursionError, UnicodeDecodeError):
        raise TokenInvalidError("malformed token: payload is not valid json") from None
    if type(value) is not dict:
        raise TokenInvalidError("malformed token: payload is not a json object")
    return value


# Most specific first: InvalidSignatureError is a DecodeError.
_FAILURE_REASONS: tuple[tuple[type[BaseException], str], ...] = (
    (jwt.ExpiredSignatureError, "expired"),
    (jwt.ImmatureSignatureError, "not_yet_valid"),
    (jwt.InvalidAudienceError, "wrong_audience"),
    (jwt.InvalidSignatureError, "bad_signature"),
    (jwt.InvalidKeyError, "bad_signature"),
    (jwt.InvalidAlgorithmError, "unsupported_algorithm"),
    (jwt.MissingRequiredClaimError, "missing_claim"),
    (jwt.DecodeError, "malformed"),
    (jwt.PyJWTError, "malformed"),
)


def jose_failure_reason(exc: BaseException) -> str | None:
    """Name the PyJWT failure behind ``exc`` (following ``__cause__``), or None if there is none.

    One of: expired, not_yet_valid, wrong_audience, bad_signature, unsupported_algorithm,
    missing_claim, malformed.
    """
    seen: BaseException | None = exc
    depth = 0
    while seen is not None and depth < 8:
        for kind, reason in _FAILURE_REASONS:
            if isinstance(seen, kind):
                return reason
        seen = seen.__cause__
        depth += 1
    return None


# -- verifying third-party JWTs (OIDC issuers) -----------------------------------------------

VerifyingKey = Any  # a cryptography public key object


def jwk_to_key(jwk: Mapping[str, Any]) -> tuple[VerifyingKey, str]:
    """The public key of one JWK and its key type; ValueError when unusable."""
    try:
        parsed = jwt.PyJWK(dict(jwk))
    except (jwt.PyJWKError, jwt.InvalidKeyError, TypeError, KeyError) as exc:
        raise ValueError(f"unusable jwk: {exc}") from None
    key = parsed.key
    if hasattr(key, "public_key") and not isinstance(
        key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey
    ):
        raise ValueError("a jwks must hold public keys only")
    return key, str(jwk.get("kty", ""))


def verify_signature(token: str, key: VerifyingKey, alg: str) -> dict[str, Any]:
    """Check the JWS signature of ``token`` with ``key`` for exactly ``alg``; return the claims.

    Only the signature: every claim (exp, aud, iss, …) is the caller's to check, against its
    own clock. Raises TokenInvalidError on a bad signature, an algorithm that does not fit the
    key, or a malformed token.
    """
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[alg],
            options={
                "verify_signature": True,
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_aud": False,
                "verify_iss": False,
                "verify_sub": False,
                "verify_jti": False,
                "require": [],
            },
        )
    except jwt.InvalidSignatureError:
        raise TokenInvalidError("invalid signature") from None
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise TokenInvalidError(
            f"token rejected: {jose_failure_reason(exc) or 'invalid'}"
        ) from None
    if not isinstance(claims, dict):
        raise TokenInvalidError("malformed token: payload is not a json object")
    return claims
