"""Verify task credentials on the decision hot path (RFC 8725 rules, EdDSA only).

``TaskCredentialVerifier.verify`` raises the precise ``TokenInvalidError`` subclass (for the
audit log; untrusted callers only ever see ``token_invalid``). The checks, in order:

1. size: more than ``max_token_bytes`` → TokenTooLargeError (before anything else is read)
2. the verified-token cache (see below)
3. three base64url segments; the header is a JSON object → TokenInvalidError
4. ``alg`` is exactly ``EdDSA`` (``none``, HS*, RS*, ES*, PS* and anything else refused; the
   allow-list is fixed, never taken from the token) → AlgorithmNotAllowedError
5. no ``jku``, ``x5u``, ``jwk``, ``x5c``, ``crit`` header (keys are never taken from a token,
   and no extension is understood) → ForbiddenHeaderError
6. ``kid`` present and known to the key manager → KeyNotFoundError
7. ``typ``, when present, is ``at+jwt`` (RFC 9068; stops other JWTs signed by the same key
   being replayed as credentials) → TokenInvalidError
8. the Ed25519 signature, with the pre-built public key → TokenInvalidError
9. the claims set is a JSON object with ``iss sub aud exp iat jti task scope ver`` (``ver`` = 1)
   → TokenInvalidError
10. ``iss`` equals the configured issuer → IssuerMismatchError
11. ``aud`` shares a value with the configured audiences → AudienceMismatchError
12. ``exp`` / ``nbf`` / ``iat`` against the clock, with ``leeway`` seconds of tolerance
    → TokenExpiredError / TokenNotYetValidError

**Fresh path.** No PyJWT here: a strict compact-JWS parse (``tokens._jose``), one JSON decode
per segment, and ``Ed25519PublicKey.verify`` with the key manager's pre-built key object. This
costs the signature check plus ~10-15 µs, where ``jwt.decode`` adds ~40-50 µs. The header
checks (decoding, 4-7) run once per distinct header segment (all credentials signed by one key
share it): accepted segments are remembered, at most 64; the key itself is looked up every time.

**Cache.** A verified credential is remembered under the exact token string and returned, for
about a microsecond (a dict lookup and one float compare), while ``now < exp``. It is bounded
(``cache_size``; expired entries are dropped first, then the oldest). The cache knows nothing
about revocation: callers check the revocation set on every call, and ``clear_cache()`` after
removing a key from the key manager.

Tokens are never logged and never appear in error messages.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from warden.core.clock import Clock
from warden.errors import (
    AlgorithmNotAllowedError,
    AudienceMismatchError,
    ForbiddenHeaderError,
    IssuerMismatchError,
    KeyNotFoundError,
    TokenExpiredError,
    TokenInvalidError,
    TokenNotYetValidError,
    TokenTooLargeError,
)
from warden.tokens import _jose
from warden.tokens.dpop import confirmation
from warden.tokens.issuer import FORMAT_VERSION, TOKEN_TYPE
from warden.tokens.keys import ALGORITHM, KeyManager

__all__ = ["FORBIDDEN_HEADERS", "REQUIRED_CLAIMS", "TaskCredentialVerifier", "VerifiedCredential"]

FORBIDDEN_HEADERS = frozenset({"jku", "x5u", "jwk", "x5c", "crit"})
REQUIRED_CLAIMS = ("iss", "sub", "aud", "exp", "iat", "jti", "task", "scope", "ver")


@dataclass(frozen=True, slots=True)
class VerifiedCredential:
    """A credential whose signature and claims were checked. Shared by cache hits: don't mutate
    ``claims``."""

    jti: str
    subject: str
    audience: tuple[str, ...]
    task_id: str
    scope: frozenset[str]
    issued_at: float
    expires_at: float
    kid: str
    claims: dict[str, Any]
    jkt: str | None = None  # RFC 9449 ``cnf.jkt``: the key a proof must be signed with

    @property
    def actors(self) -> list[str]:
        """The ``act`` chain, most recent actor first (RFC 8693 §4.1); empty when none."""
        out: list[str] = []
        act = self.claims.get("act")
        while isinstance(act, dict) and isinstance(act.get("sub"), str) and len(out) < 16:
            out.append(act["sub"])
            act = act.get("act")
        return out


def _show(value: object) -> str:
    """Untrusted header values in messages: short and on one line."""
    text = value if isinstance(value, str) else repr(value)
    text = text.replace("\n", " ").replace("`", "'")
    return text if len(text) <= 40 else text[:37] + "..."


def _time(claims: dict[str, Any], name: str) -> float:
    value = claims[name]
    if type(value) is not int and type(value) is not float:
        raise TokenInvalidError(f"claim `{name}` must be a number")
    try:
        return float(value)
    except OverflowError:
        raise TokenInvalidError(f"claim `{name}` is out of range") from None


def _text(claims: dict[str, Any], name: str, *, empty: bool = False) -> str:
    value = claims[name]
    if type(value) is not str or (not value and not empty):
        raise TokenInvalidError(f"claim `{name}` must be a non-empty string")
    return value


class TaskCredentialVerifier:
    """Verifies Warden task credentials; see the module docstring for the rules."""

    def __init__(
        self,
        keys: KeyManager,
        *,
        issuer: str,
        audiences: Collection[str],
        clock: Clock,
        leeway: float = 5,
        max_token_bytes: int = 8192,
        cache_size: int = 10000,
    ) -> None:
        if not isinstance(issuer, str) or not issuer:
            raise ValueError("issuer must be a non-empty string")
        if isinstance(audiences, str):
            raise ValueError("audiences must be a collection of strings, not one string")
        accepted = frozenset(audiences)
        if not accepted or not all(isinstance(a, str) and a for a in accepted):
            raise ValueError("a verifier needs at least one expected audience")
        if not math.isfinite(leeway) or leeway < 0:
            raise ValueError("leeway must be a non-negative number of seconds")
        if max_token_bytes <= 0 or cache_size < 0:
            raise ValueError("max_token_bytes must be positive and cache_size non-negative")
        self._keys = keys
        self._issuer = issuer
        self._audiences = accepted
        self._clock = clock
        self._leeway = float(leeway)
        self._max_bytes = max_token_bytes
        self._cache_size = cache_size
        # token -> (exp, credential). Plain dict: insertion order gives "oldest first" for free.
        self._cache: dict[str, tuple[float, VerifiedCredential]] = {}
        # header segment -> kid, for header segments that passed the header checks
        self._headers: dict[str, str] = {}

    @property
    def issuer(self) -> str:
        return self._issuer

    @property
    def audiences(self) -> frozenset[str]:
        return self._audiences

    def verify(self, token: str) -> VerifiedCredential:
        """Verify ``token`` and return its credential, or raise a ``TokenInvalidError``."""
        try:
            if len(token) > self._max_bytes:
                raise TokenTooLargeError(f"token is larger than {self._max_bytes} bytes")
            entry = self._cache.get(token)
        except TypeError:  # not a string (unsized or unhashable)
            raise TokenInvalidError("token must be a string") from None
        if entry is not None and self._clock.now() < entry[0]:
            return entry[1]
        return self._verify_fresh(token)

    def peek_unverified(self, token: str) -> dict[str, Any]:
        """The claims of ``token`` WITHOUT verification: for logging and routing, never trust.

        Raises TokenInvalidError (or TokenTooLargeError) when the token cannot be parsed.
        """
        self._check_size(token)
        return _jose.unverified_claims(token)

    def invalidate(self, token: str) -> None:
        """Forget one cached token (it will be fully verified again on next use)."""
        self._cache.pop(token, None)

    def clear_cache(self) -> None:
        """Forget every cached token (after a key is removed from the key manager)."""
        self._cache.clear()
        self._headers.clear()

    @property
    def cache_len(self) -> int:
        return len(self._cache)

    # -- the fresh path --------------------------------------------------------------------------

    def _check_size(self, token: str) -> None:
        if not isinstance(token, str):
            raise TokenInvalidError("token must be a string")
        if len(token) > self._max_bytes or (
            not token.isascii() and len(token.encode("utf-8", "surrogatepass")) > self._max_bytes
        ):
            raise TokenTooLargeError(f"token is larger than {self._max_bytes} bytes")

    def _verify_fresh(self, token: str) -> VerifiedCredential:
        self._check_size(token)
        if not token.isascii():
            raise TokenInvalidError("malformed token: not ascii")
        header_seg, payload_seg, signature_seg = _jose.split(token)
        kid = self._headers.get(header_seg)
        if kid is None:
            kid = self._check_header(header_seg)
        key = self._keys.public_key(kid)
        if key is None:
            raise KeyNotFoundError(f"unknown key id `{_show(kid)}`")
        _jose.verify_ed25519(key, f"{header_seg}.{payload_seg}".encode("ascii"), signature_seg)

        claims = _jose.decode_json_segment(payload_seg, "payload")
        for name in REQUIRED_CLAIMS:
            if name not in claims:
                raise TokenInvalidError(f"missing required claim `{name}`")
        version = claims["ver"]
        if type(version) is not int or version != FORMAT_VERSION:
            raise TokenInvalidError(f"unsupported credential version `{_show(version)}`")
        if claims["iss"] != self._issuer:
            raise IssuerMismatchError("credential was issued by another issuer")
        aud = claims["aud"]
        if type(aud) is str:
            audience: tuple[str, ...] = (aud,)
        elif type(aud) is list and aud and all(type(item) is str for item in aud):
            audience = tuple(aud)
        else:
            raise TokenInvalidError("claim `aud` must be a string or a list of strings")
        if self._audiences.isdisjoint(audience):
            raise AudienceMismatchError("credential is not meant for this audience")

        expires_at = _time(claims, "exp")
        issued_at = _time(claims, "iat")
        not_before = _time(claims, "nbf") if "nbf" in claims else None
        now = self._clock.now()
        if now >= expires_at + self._leeway:
            raise TokenExpiredError("credential has expired")
        if not_before is not None and not_before > now + self._leeway:
            raise TokenNotYetValidError("credential is not valid yet")
        if issued_at > now + self._leeway:
            raise TokenNotYetValidError("credential was issued in the future")

        credential = VerifiedCredential(
            jti=_text(claims, "jti"),
            subject=_text(claims, "sub"),
            audience=audience,
            task_id=_text(claims, "task"),
            scope=frozenset(_text(claims, "scope", empty=True).split()),
            issued_at=issued_at,
            expires_at=expires_at,
            kid=kid,
            claims=claims,
            jkt=confirmation(claims),
        )
        if self._cache_size and now < expires_at:
            self._remember(token, expires_at, credential)
        return credential

    def _check_header(self, header_seg: str) -> str:
        """Validate a header segment and return its ``kid``.

        Every credential signed by one key has the same header segment, so accepted segments are
        remembered (up to 64, never evicted: crafted variants cannot push real ones out, they
        just stop being remembered). Only the header checks are skipped; the key and signature
        are checked on every fresh verification.
        """
        header = _jose.decode_json_segment(header_seg, "header")
        alg = header.get("alg")
        if alg != ALGORITHM:
            raise AlgorithmNotAllowedError(f"algorithm `{_show(alg)}` is not allowed")
        if not FORBIDDEN_HEADERS.isdisjoint(header):
            name = min(FORBIDDEN_HEADERS.intersection(header))
            raise ForbiddenHeaderError(f"header `{name}` is not allowed")
        kid = header.get("kid")
        if type(kid) is not str or not kid:
            raise KeyNotFoundError("token has no key id")
        known = self._keys.public_key(kid) is not None
        if not known:
            raise KeyNotFoundError(f"unknown key id `{_show(kid)}`")
        if "typ" in header and header["typ"] != TOKEN_TYPE:
            raise TokenInvalidError(f"token type `{_show(header['typ'])}` is not `{TOKEN_TYPE}`")
        if len(self._headers) < 64:
            self._headers[header_seg] = kid
        return kid

    def _remember(self, token: str, expires_at: float, credential: VerifiedCredential) -> None:
        cache = self._cache
        if len(cache) >= self._cache_size and token not in cache:
            # Amortised O(1): one sweep frees at least a tenth of the cache.
            now = self._clock.now()
            for cached, (exp, _) in list(cache.items()):
                if exp <= now:
                    cache.pop(cached, None)
            target = self._cache_size - max(1, self._cache_size // 10)
            while len(cache) > target:
                try:
                    cache.pop(next(iter(cache)), None)
                except (StopIteration, RuntimeError):  # emptied / resized by another thread
                    break
        cache[token] = (expires_at, credential)
