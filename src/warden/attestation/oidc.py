"""OIDC id tokens and Kubernetes projected service-account tokens (methods ``oidc``, ``k8s``).

Each configured issuer has a URL (the exact ``iss``), the audience its tokens must carry for
this Warden, a kind (``oidc`` or ``kubernetes``) and an optional claim → selector mapping.
Verification of a token from issuer I, in order (reasons in backticks):

1. size and JWS Compact shape (``too_large``, ``malformed``); header ``alg`` in RS/PS/ES
   256/384/512 or EdDSA (``unsupported_algorithm``: never ``none`` or HMAC); no ``jku``,
   ``x5u``, ``jwk``, ``x5c``, ``crit`` (``forbidden_header``); ``kid`` present (``missing_kid``)
2. ``iss`` is exactly I (``wrong_issuer``)
3. the key: from I's JWKS, found through its discovery document
   (``<issuer>/.well-known/openid-configuration`` → ``jwks_uri``, whose ``issuer`` must be I)
   unless ``jwks_uri`` is configured. See "Key cache" below (``unknown_key``,
   ``jwks_unavailable``)
4. the signature with that key and the header's algorithm (``bad_signature``)
5. ``aud`` contains the configured audience (``wrong_audience``); ``exp`` present and not
   passed, ``nbf``/``iat`` not in the future, with ``leeway`` (``expired``, ``not_yet_valid``,
   ``missing_claim``); ``sub`` a non-empty string (``missing_claim``)
6. kind ``kubernetes``: the ``kubernetes.io`` claim with ``namespace`` and
   ``serviceaccount.name`` (``missing_claim``)

Selectors of a verified token: ``oidc:iss:<iss>``, ``oidc:sub:<sub>``, ``oidc:<claim>:<value>``
for every top-level claim that is a string, number or boolean (one per element for lists of
them; not ``exp``/``iat``/``nbf``/``jti``, which change on every token), the configured mapping
(``selectors: {"repository": "ci:repo"}`` gives ``ci:repo:<repository>``; a claim path may go
into objects with ``/``, e.g. ``kubernetes.io/pod/name``), and for Kubernetes
``k8s:ns:``, ``k8s:sa:``, ``k8s:sa-uid:``, ``k8s:pod:``, ``k8s:pod-uid:``.

**Key cache.** A fetched JWKS is *fresh* for ``jwks_refresh`` (default 5 min, or the response's
``Cache-Control: max-age`` when shorter) and *usable* for ``jwks_ttl`` (default 1 h) after it was
fetched. A token whose ``kid`` is not in the cache triggers one refresh, at most once per
``min_refresh_interval`` (default 30 s) per issuer, so key rotation works without a restart
and a flood of made-up ``kid`` values cannot hammer the issuer. When a refresh fails (down,
slow past ``timeout``, not JSON, no usable keys), the cached keys keep serving until their
``jwks_ttl``; after that every token of the issuer is refused (``jwks_unavailable``): fail
closed.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warden.attestation._http import Fetched, FetchError, check_url, fetch_json
from warden.attestation.base import Channel, WorkloadIdentity, attestation_error, evidence_hash
from warden.core.clock import Clock, SystemClock
from warden.core.selectors import MAX_SELECTOR
from warden.errors import AttestationError, InvalidParameterError, TokenInvalidError
from warden.tokens import jwk_to_key, peek_header, peek_unverified, verify_signature

__all__ = ["TOKEN_TYPE_ID_TOKEN", "OIDCAttestor", "OIDCIssuer"]

TOKEN_TYPE_ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"  # noqa: S105 - a URN
ALLOWED_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
FORBIDDEN_HEADERS = frozenset({"jku", "x5u", "jwk", "x5c", "crit"})
_VOLATILE_CLAIMS = frozenset({"exp", "iat", "nbf", "jti"})
_KIND_METHOD = {"oidc": "oidc", "kubernetes": "k8s"}


@dataclass(frozen=True)
class OIDCIssuer:
    issuer: str
    audience: str
    kind: str = "oidc"  # or "kubernetes"
    jwks_uri: str | None = None
    ca_file: Path | None = None
    selectors: Mapping[str, str] = field(default_factory=dict)
    jwks_refresh: float = 300.0
    jwks_ttl: float = 3600.0
    min_refresh_interval: float = 30.0
    timeout: float = 5.0
    leeway: float = 5.0
    max_token_bytes: int = 16384

    def __post_init__(self) -> None:
        check_url(self.issuer, "oidc `issuer`")
        if self.jwks_uri is not None:
            check_url(self.jwks_uri, f"oidc issuer `{self.issuer}` `jwks_uri`")
        if not isinstance(self.audience, str) or not self.audience:
            raise InvalidParameterError(f"oidc issuer `{self.issuer}` needs an `audience`")
        if self.kind not in _KIND_METHOD:
            raise InvalidParameterError(
                f"oidc issuer `{self.issuer}` `kind` must be `oidc` or `kubernetes`"
            )
        for name in ("jwks_refresh", "jwks_ttl", "min_refresh_interval", "timeout", "leeway"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise InvalidParameterError(f"oidc issuer `{self.issuer}` `{name}` must be ≥ 0")
        if self.jwks_ttl < self.jwks_refresh:
            raise InvalidParameterError(
                f"oidc issuer `{self.issuer}`: `jwks_ttl` must be at least `jwks_refresh`"
            )
        for claim, prefix in self.selectors.items():
            parts = str(prefix).split(":")
            if not claim or len(parts) != 2 or not all(parts):
                raise InvalidParameterError(
                    f"oidc issuer `{self.issuer}`: selector for `{claim}` must be `<type>:<key>`"
                )


def _fail(method: str, reason: str, message: str) -> AttestationError:
    return attestation_error(reason, message, method=method)


class JWKSCache:
    """One issuer's keys; see "Key cache" in the module docstring. Thread-safe."""

    def __init__(
        self, issuer: OIDCIssuer, clock: Clock, fetch: Callable[..., Fetched] = fetch_json
    ) -> None:
        self._cfg = issuer
        self._clock = clock
        self._fetch = fetch
        self._lock = threading.Lock()
        self._keys: dict[str, tuple[Any, str]] = {}
        self._fetched_at: float | None = None
        self._fresh_until = 0.0
        self._last_forced = -math.inf
        self._jwks_uri = issuer.jwks_uri
        self.fetches = 0
        self.last_error: str | None = None

    def key(self, kid: str, method: str) -> tuple[Any, str]:
        now = self._clock.now()
        if now >= self._fresh_until:  # also right after a failure: paced, never a hot loop
            self._refresh(now)
        elif kid not in self._keys and now - self._last_forced >= self._cfg.min_refresh_interval:
            self._last_forced = now
            self._refresh(now)
        if self._fetched_at is None or now >= self._fetched_at + self._cfg.jwks_ttl:
            raise _fail(
                method,
                "jwks_unavailable",
                f"keys of issuer `{self._cfg.issuer}` are unavailable: {self.last_error}",
            )
        found = self._keys.get(kid)
        if found is None:
            raise _fail(method, "unknown_key", f"issuer has no key `{kid[:64]}`")
        return found

    def _refresh(self, now: float) -> None:
        if not self._lock.acquire(blocking=False):
            return  # another thread is fetching; use what is cached
        try:
            self.fetches += 1
            uri = self._jwks_uri or self._discover()
            fetched = self._fetch(uri, ca_file=self._cfg.ca_file, timeout=self._cfg.timeout)
            keys = self._parse(fetched.document)
            self._jwks_uri = uri
            self._keys = keys
            self._fetched_at = now
            refresh = self._cfg.jwks_refresh
            if fetched.max_age is not None:
                refresh = min(refresh, fetched.max_age)
            self._fresh_until = now + refresh
            self.last_error = None
        except (FetchError, InvalidParameterError) as exc:
            self.last_error = exc.message
            # stay on the cached keys; try again on the next token after a short pause
            self._fresh_until = now + min(self._cfg.min_refresh_interval, self._cfg.jwks_refresh)
        finally:
            self._lock.release()

    def _discover(self) -> str:
        url = self._cfg.issuer.rstrip("/") + "/.well-known/openid-configuration"
        doc = self._fetch(url, ca_file=self._cfg.ca_file, timeout=self._cfg.timeout).document
        if doc.get("issuer") != self._cfg.issuer:
            raise FetchError("discovery", "discovery document names another issuer")
        return check_url(doc.get("jwks_uri"), "discovered `jwks_uri`")

    def _parse(self, document: dict[str, Any]) -> dict[str, tuple[Any, str]]:
        raw = document.get("keys")
        if not isinstance(raw, list):
            raise FetchError("not_jwks", "the jwks has no `keys` list")
        keys: dict[str, tuple[Any, str]] = {}
        for jwk in raw:
            if not isinstance(jwk, dict) or jwk.get("use") not in (None, "sig"):
                continue
            kid = jwk.get("kid")
            if not isinstance(kid, str) or not kid:
                continue
            try:
                key, kty = jwk_to_key(jwk)
            except ValueError:
                continue  # a key this Warden cannot use is never trusted
            declared = jwk.get("alg")
            keys[kid] = (key, str(declared) if isinstance(declared, str) else kty)
        if not keys:
            raise FetchError("not_jwks", "the jwks holds no usable signing key")
        return keys


def _claim_path(claims: Mapping[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("/"):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _scalars(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if isinstance(item, bool):
            out.append("true" if item else "false")
        elif isinstance(item, str | int) or (isinstance(item, float) and math.isfinite(item)):
            out.append(str(item))
    return out


def _fits(alg: str, kty: str) -> bool:
    if kty in ALLOWED_ALGORITHMS:  # the jwk declared its alg
        return alg == kty
    family = {"RSA": ("RS", "PS"), "EC": ("ES",), "OKP": ("Ed",)}.get(kty, ())
    return alg.startswith(family) if family else False


class OIDCAttestor:
    """Verifies tokens of one configured issuer (see the module docstring)."""

    token_types = frozenset({TOKEN_TYPE_ID_TOKEN})

    def __init__(
        self,
        issuer: OIDCIssuer,
        *,
        clock: Clock | None = None,
        fetch: Callable[..., Fetched] = fetch_json,
    ) -> None:
        self.issuer = issuer
        self._clock: Clock = clock or SystemClock()
        self.keys = JWKSCache(issuer, self._clock, fetch)
        self.method = _KIND_METHOD[issuer.kind]

    def attest(
        self, token: str, token_type: str, channel: Channel | None = None
    ) -> WorkloadIdentity:
        method = self.method
        if not isinstance(token, str) or not token:
            raise _fail(method, "malformed", "token must be a non-empty string")
        if len(token.encode("utf-8", "surrogatepass")) > self.issuer.max_token_bytes:
            raise _fail(method, "too_large", "token is too large")
        try:
            header = peek_header(token)
            unverified = peek_unverified(token)
        except TokenInvalidError as exc:
            raise _fail(method, "malformed", f"token is malformed: {exc.message}") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in ALLOWED_ALGORITHMS:
            raise _fail(method, "unsupported_algorithm", "token algorithm is not allowed")
        bad = sorted(FORBIDDEN_HEADERS.intersection(header))
        if bad:
            raise _fail(method, "forbidden_header", f"token header `{bad[0]}` is not allowed")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise _fail(method, "missing_kid", "token header has no key id")
        if unverified.get("iss") != self.issuer.issuer:
            raise _fail(method, "wrong_issuer", "token is not from this issuer")
        key, kty = self.keys.key(kid, method)
        if not _fits(alg, kty):
            raise _fail(method, "unsupported_algorithm", f"algorithm `{alg}` does not fit key")
        try:
            claims = verify_signature(token, key, alg)
        except TokenInvalidError:
            raise _fail(method, "bad_signature", "token signature is invalid") from None
        self._check_claims(claims)
        selectors = self._selectors(claims)
        return WorkloadIdentity(
            spiffe_id=None,
            method=method,
            evidence_hash=evidence_hash(token),
            trust_domain=None,
            expires_at=float(claims["exp"]),
            claims=claims,
            selectors=frozenset(selectors),
        )

    def _number(self, claims: Mapping[str, Any], name: str) -> float | None:
        value = claims.get(name)
        if value is None:
            return None
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise _fail(self.method, "malformed", f"token `{name}` must be a number")
        return float(value)

    def _check_claims(self, claims: Mapping[str, Any]) -> None:
        method, leeway, now = self.method, self.issuer.leeway, self._clock.now()
        if claims.get("iss") != self.issuer.issuer:
            raise _fail(method, "wrong_issuer", "token is not from this issuer")
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud
        if aud is None:
            raise _fail(method, "missing_claim", "token has no `aud` claim")
        if not isinstance(audiences, list) or self.issuer.audience not in audiences:
            raise _fail(method, "wrong_audience", "token is not meant for this audience")
        exp = self._number(claims, "exp")
        if exp is None:
            raise _fail(method, "missing_claim", "token has no `exp` claim")
        if now >= exp + leeway:
            raise _fail(method, "expired", "token has expired")
        for name in ("nbf", "iat"):
            moment = self._number(claims, name)
            if moment is not None and moment > now + leeway:
                raise _fail(method, "not_yet_valid", f"token `{name}` is in the future")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise _fail(method, "missing_claim", "token has no `sub` claim")
        if self.issuer.kind == "kubernetes":
            k8s = claims.get("kubernetes.io")
            sa = k8s.get("serviceaccount") if isinstance(k8s, dict) else None
            if (
                not isinstance(k8s, dict)
                or not isinstance(k8s.get("namespace"), str)
                or not isinstance(sa, dict)
                or not isinstance(sa.get("name"), str)
            ):
                raise _fail(
                    method,
                    "missing_claim",
                    "kubernetes token has no `kubernetes.io` namespace and service account",
                )

    def _selectors(self, claims: Mapping[str, Any]) -> set[str]:
        out = {f"oidc:iss:{claims['iss']}", f"oidc:sub:{claims['sub']}"}
        for name, value in claims.items():
            if name in _VOLATILE_CLAIMS or name in ("iss", "sub"):
                continue
            if not (1 <= len(name) <= 64) or not all(c.isalnum() or c in "_.-" for c in name):
                continue  # not expressible as a selector key
            out.update(f"oidc:{name}:{v}" for v in _scalars(value))
        for path, prefix in self.issuer.selectors.items():
            out.update(f"{prefix}:{v}" for v in _scalars(_claim_path(claims, path)))
        if self.issuer.kind == "kubernetes":
            k8s = claims["kubernetes.io"]
            sa, pod = k8s.get("serviceaccount") or {}, k8s.get("pod") or {}
            out.add(f"k8s:ns:{k8s['namespace']}")
            out.add(f"k8s:sa:{sa['name']}")
            for selector, value in (
                ("sa-uid", sa.get("uid")),
                ("pod", pod.get("name") if isinstance(pod, dict) else None),
                ("pod-uid", pod.get("uid") if isinstance(pod, dict) else None),
            ):
                if isinstance(value, str) and value:
                    out.add(f"k8s:{selector}:{value}")
        return {s for s in out if len(s) <= MAX_SELECTOR and s.split(":", 2)[2]}
