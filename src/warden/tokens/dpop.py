"""DPoP proofs (RFC 9449): bind a credential to a key the agent holds, and check the proofs.

A proof is a JWS the client signs for one HTTP request: header ``typ: dpop+jwt``, an asymmetric
``alg`` and the public ``jwk``; claims ``jti``, ``htm`` (method), ``htu`` (URI without query and
fragment), ``iat`` and, when an access token goes with it, ``ath`` = base64url(SHA-256(token)).
A credential bound to the key carries ``cnf.jkt`` = the key's RFC 7638 thumbprint.

``DPoPVerifier.verify`` runs the RFC 9449 §4.3 checklist in order and raises ``DPoPProofError``
whose ``detail["reason"]`` names the failure: missing, malformed, wrong_type, bad_algorithm,
bad_key, bad_signature, wrong_method, wrong_uri, stale, wrong_token_hash, wrong_key, replayed.
Replay is checked last (an invalid proof never uses up a ``jti``) against a ``ProofLedger``
shared by every replica (the database), keyed by the key thumbprint and ``jti`` and kept until
the proof could no longer pass the ``iat`` window anyway.

Server-provided nonces (``DPoP-Nonce``) are not used: the ``iat`` window plus the shared replay
ledger bound the replay window instead (RFC 9449 §11.1).
"""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from cryptography.hazmat.primitives.asymmetric import ec

from warden.core.clock import Clock, SystemClock
from warden.errors import DPoPProofError, TokenInvalidError
from warden.tokens import _jose

__all__ = [
    "PROOF_ALGORITHMS",
    "PROOF_TYPE",
    "DPoPKey",
    "DPoPProof",
    "DPoPVerifier",
    "ProofLedger",
    "access_token_hash",
    "confirmation",
    "normalize_htu",
]

PROOF_TYPE = "dpop+jwt"
PROOF_ALGORITHMS = ("ES256", "ES384", "EdDSA", "PS256", "RS256")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class ProofLedger(Protocol):
    """Where used proofs are remembered (``Store.remember_proof`` fits)."""

    def remember_proof(self, key: str, *, expires_at: float, now: float) -> bool: ...


@dataclass(frozen=True, slots=True)
class DPoPProof:
    """A proof that passed every check."""

    jkt: str  # RFC 7638 thumbprint of the proof key
    jti: str
    issued_at: float
    htm: str
    htu: str
    ath: str | None = None  # the access token hash the proof names, if any


def access_token_hash(token: str) -> str:
    """``ath``: base64url(SHA-256(ASCII token)) (RFC 9449 §4.2)."""
    return _jose.b64url_encode(hashlib.sha256(token.encode("ascii")).digest())


def normalize_htu(uri: str) -> str:
    """Scheme and host lower case, default port dropped, empty path ``/``, no query/fragment.

    Raises ValueError for anything that is not an absolute http(s) URI.
    """
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError("not an absolute http(s) uri")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", "", ""))


def _fail(reason: str, message: str) -> DPoPProofError:
    return DPoPProofError(message, detail={"reason": reason})


class DPoPVerifier:
    """Checks DPoP proofs; see the module docstring."""

    def __init__(
        self,
        clock: Clock,
        ledger: ProofLedger,
        *,
        max_age: float = 60.0,
        leeway: float = 5.0,
        max_bytes: int = 4096,
    ) -> None:
        if not (math.isfinite(max_age) and max_age > 0 and math.isfinite(leeway) and leeway >= 0):
            raise ValueError("max_age must be positive and leeway non-negative")
        self._clock = clock
        self._ledger = ledger
        self._max_age = float(max_age)
        self._leeway = float(leeway)
        self._max_bytes = max_bytes

    @property
    def max_age(self) -> float:
        return self._max_age

    def verify(
        self,
        proof: str | None,
        *,
        method: str,
        uri: str,
        access_token: str | None = None,
        jkt: str | None = None,
        spend: bool = True,
    ) -> DPoPProof:
        """Verify ``proof`` for one request; ``jkt`` is the binding the credential carries.

        ``spend=False`` checks everything but replay and leaves the ``jti`` unused: for the
        extra decisions one request needs (a PEP filtering a listing decides once per item)."""
        if not proof:
            raise _fail("missing", "a DPoP proof is required")
        if not isinstance(proof, str) or len(proof) > self._max_bytes or not proof.isascii():
            raise _fail("malformed", "the DPoP proof is not a compact JWS")
        try:
            header = _jose.unverified_header(proof)
        except TokenInvalidError:
            raise _fail("malformed", "the DPoP proof is not a compact JWS") from None
        if header.get("typ") != PROOF_TYPE:
            raise _fail("wrong_type", f"the DPoP proof must have typ `{PROOF_TYPE}`")
        alg = header.get("alg")
        if alg not in PROOF_ALGORITHMS:
            raise _fail("bad_algorithm", "the DPoP proof algorithm is not accepted")
        jwk = header.get("jwk")
        if not isinstance(jwk, dict):
            raise _fail("bad_key", "the DPoP proof carries no public key")
        try:
            claims = _jose.verify_with_jwk(proof, jwk, str(alg))
            thumbprint = _jose.jwk_thumbprint(jwk)
        except TokenInvalidError as exc:
            reason = exc.detail.get("reason", "malformed")
            raise _fail(reason, f"the DPoP proof is not valid: {exc.message}") from None
        except (ValueError, KeyError, TypeError):
            raise _fail("bad_key", "the DPoP proof key is not usable") from None
        jti, htm, htu, iat = (claims.get(k) for k in ("jti", "htm", "htu", "iat"))
        if not (isinstance(jti, str) and 0 < len(jti) <= 256):
            raise _fail("malformed", "the DPoP proof needs a `jti`")
        if not isinstance(htm, str) or not isinstance(htu, str):
            raise _fail("malformed", "the DPoP proof needs `htm` and `htu`")
        if type(iat) is not int and type(iat) is not float:
            raise _fail("malformed", "the DPoP proof needs a numeric `iat`")
        if htm != method.upper():
            raise _fail("wrong_method", "the DPoP proof is for another http method")
        try:
            same_uri = normalize_htu(htu) == normalize_htu(uri)
        except ValueError:
            same_uri = False
        if not same_uri:
            raise _fail("wrong_uri", "the DPoP proof is for another uri")
        now = self._clock.now()
        if not (now - self._max_age - self._leeway <= iat <= now + self._leeway):
            raise _fail("stale", "the DPoP proof is too old or from the future")
        if access_token is not None and claims.get("ath") != access_token_hash(access_token):
            raise _fail("wrong_token_hash", "the DPoP proof is for another access token")
        if jkt is not None and thumbprint != jkt:
            raise _fail("wrong_key", "the DPoP proof is signed by another key than the binding")
        replay_key = hashlib.sha256(f"{thumbprint}|{jti}".encode()).hexdigest()
        expires_at = float(iat) + self._max_age + 2 * self._leeway
        if spend and not self._ledger.remember_proof(replay_key, expires_at=expires_at, now=now):
            raise _fail("replayed", "the DPoP proof was already used")
        ath = claims.get("ath")
        return DPoPProof(
            jkt=thumbprint,
            jti=jti,
            issued_at=float(iat),
            htm=htm,
            htu=htu,
            ath=None if ath is None else str(ath),
        )


def confirmation(claims: dict[str, Any]) -> str | None:
    """The ``cnf.jkt`` of verified credential claims, or None when the credential is unbound.

    Raises TokenInvalidError for a ``cnf`` that is present but not ``{"jkt": "<thumbprint>"}``:
    a binding Warden cannot read must never be treated as no binding.
    """
    cnf = claims.get("cnf")
    if cnf is None:
        return None
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    if not isinstance(jkt, str) or not jkt:
        raise TokenInvalidError("claim `cnf` must be an object with a `jkt`")
    return jkt


class DPoPKey:
    """The client side: an agent's ES256 key that signs proofs (the demo and clients use it)."""

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock
        self._private = ec.generate_private_key(ec.SECP256R1())
        self.public_jwk = _jose.ec_public_jwk(self._private.public_key())

    @property
    def jkt(self) -> str:
        return _jose.jwk_thumbprint(self.public_jwk)

    def proof(self, method: str, uri: str, *, access_token: str | None = None) -> str:
        """A fresh proof for one request (``ath`` when an access token goes with it)."""
        claims: dict[str, Any] = {
            "jti": secrets.token_urlsafe(16),
            "htm": method.upper(),
            "htu": uri,
            "iat": int((self._clock or SystemClock()).now()),
        }
        if access_token is not None:
            claims["ath"] = access_token_hash(access_token)
        return _jose.encode(
            claims, self._private, alg="ES256", headers={"typ": PROOF_TYPE, "jwk": self.public_jwk}
        )
