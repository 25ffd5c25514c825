"""DSSE envelopes (Dead Simple Signing Envelope, v1): sign and verify a payload offline.

    {"payloadType": "application/vnd.in-toto+json",
     "payload": "<base64 of the payload bytes>",
     "signatures": [{"keyid": "<key id>", "sig": "<base64 signature>"}]}

The signature covers PAE(payloadType, payload) =
``"DSSEv1" SP len(type) SP type SP len(body) SP body`` (lengths in ASCII decimal), never the
JSON around it, so re-encoding the envelope cannot change what was signed. Keys are PEM public
keys (SubjectPublicKeyInfo): Ed25519, or ECDSA P-256 with SHA-256 (DER signatures, as Sigstore
writes them). A key's id defaults to ``sha256:<hex of its DER SPKI>``.

``verify_envelope`` raises ``EnvelopeError`` (with ``detail["reason"]``: malformed,
wrong_type, unknown_key, bad_signature) and never returns a bool.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from warden.errors import InvalidParameterError

__all__ = [
    "MAX_ENVELOPE_BYTES",
    "EnvelopeError",
    "SignerKey",
    "Verified",
    "generate_private_key",
    "pae",
    "sign_envelope",
    "verify_envelope",
]

MAX_ENVELOPE_BYTES = 64 * 1024
PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey
PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey


class EnvelopeError(InvalidParameterError):
    """The envelope is malformed or no accepted key signed it (``detail["reason"]``)."""

    code = "envelope_invalid"


def _fail(reason: str, message: str) -> EnvelopeError:
    return EnvelopeError(message, detail={"reason": reason})


def pae(payload_type: str, payload: bytes) -> bytes:
    """The DSSE v1 pre-authentication encoding: what the signature covers."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def _key_id(key: PublicKey) -> str:
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(der).hexdigest()


@dataclass(frozen=True)
class SignerKey:
    """A public key allowed to sign, with its id."""

    keyid: str
    key: PublicKey

    @classmethod
    def from_pem(cls, pem: str, keyid: str | None = None) -> SignerKey:
        try:
            key = serialization.load_pem_public_key(pem.encode())
        except (ValueError, TypeError) as exc:
            raise InvalidParameterError("a signer key must be a PEM public key") from exc
        if isinstance(key, ec.EllipticCurvePublicKey):
            if not isinstance(key.curve, ec.SECP256R1):
                raise InvalidParameterError("ECDSA signer keys must be on P-256")
        elif not isinstance(key, ed25519.Ed25519PublicKey):
            raise InvalidParameterError("signer keys must be Ed25519 or ECDSA P-256")
        return cls(keyid or _key_id(key), key)

    def pem(self) -> str:
        return self.key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    def check(self, message: bytes, signature: bytes) -> bool:
        try:
            if isinstance(self.key, ed25519.Ed25519PublicKey):
                self.key.verify(signature, message)
            else:
                self.key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class Verified:
    """A payload an accepted key signed."""

    payload: bytes
    payload_type: str
    keyid: str

    @property
    def digest(self) -> str:
        """``sha256:<hex>`` of the signed payload bytes: what a credential binds."""
        return "sha256:" + hashlib.sha256(self.payload).hexdigest()


def _b64decode(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise _fail("malformed", f"`{what}` must be a base64 string")
    padded = value + "=" * (-len(value) % 4)
    try:
        if "-" in value or "_" in value:
            return base64.urlsafe_b64decode(padded)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        raise _fail("malformed", f"`{what}` is not valid base64") from None


def parse_envelope(raw: str | bytes | Mapping[str, Any]) -> dict[str, Any]:
    """The envelope as a mapping (from JSON text or already decoded); shape checked."""
    if isinstance(raw, str | bytes):
        if len(raw) > MAX_ENVELOPE_BYTES:
            raise _fail("malformed", f"the envelope is larger than {MAX_ENVELOPE_BYTES} bytes")
        try:
            raw = json.loads(raw)
        except ValueError:
            raise _fail("malformed", "the envelope is not valid json") from None
    if not isinstance(raw, Mapping):
        raise _fail("malformed", "the envelope must be a json object")
    if not isinstance(raw.get("payloadType"), str):
        raise _fail("malformed", "the envelope needs a `payloadType`")
    sigs = raw.get("signatures")
    if not isinstance(sigs, list) or not sigs or len(sigs) > 16:
        raise _fail("malformed", "the envelope needs one to sixteen `signatures`")
    if not all(isinstance(s, Mapping) for s in sigs):
        raise _fail("malformed", "each signature must be an object")
    return dict(raw)


def verify_envelope(
    raw: str | bytes | Mapping[str, Any], keys: list[SignerKey], *, payload_type: str
) -> Verified:
    """The payload, when one of ``keys`` signed it (a signature naming a key id is tried with
    that key only; one without a key id with every key)."""
    envelope = parse_envelope(raw)
    if envelope["payloadType"] != payload_type:
        raise _fail("wrong_type", f"the envelope's payloadType must be `{payload_type}`")
    payload = _b64decode(envelope.get("payload"), "payload")
    message = pae(payload_type, payload)
    by_id = {k.keyid: k for k in keys}
    named_unknown = False
    for entry in envelope["signatures"]:
        sig = _b64decode(entry.get("sig"), "sig")
        keyid = entry.get("keyid")
        if isinstance(keyid, str) and keyid:
            candidates = [by_id[keyid]] if keyid in by_id else []
            named_unknown = named_unknown or not candidates
        else:
            candidates = keys
        for key in candidates:
            if key.check(message, sig):
                return Verified(payload, payload_type, key.keyid)
    if named_unknown and not keys:
        raise _fail("unknown_key", "no signer keys are declared")
    if named_unknown:
        raise _fail("unknown_key", "the envelope is signed by a key that is not allowed")
    raise _fail("bad_signature", "no signature in the envelope verifies with an allowed key")


def generate_private_key() -> ed25519.Ed25519PrivateKey:
    """A new Ed25519 signing key (development manifests)."""
    return ed25519.Ed25519PrivateKey.generate()


def private_key_pem(key: PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def load_private_key(pem: str) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise InvalidParameterError("the signing key must be an unencrypted PEM key") from exc
    if not isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
        raise InvalidParameterError("signing keys must be Ed25519 or ECDSA P-256")
    return key


def public_signer(key: PrivateKey, keyid: str | None = None) -> SignerKey:
    return SignerKey.from_pem(
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode(),
        keyid,
    )


def sign_envelope(
    payload: bytes, payload_type: str, key: PrivateKey, keyid: str | None = None
) -> dict[str, Any]:
    """A DSSE envelope over ``payload`` signed by ``key`` (key id defaults to its SPKI hash)."""
    message = pae(payload_type, payload)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        sig = key.sign(message)
    else:
        sig = key.sign(message, ec.ECDSA(hashes.SHA256()))
    return {
        "payloadType": payload_type,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [
            {"keyid": keyid or public_signer(key).keyid, "sig": base64.b64encode(sig).decode()}
        ],
    }
