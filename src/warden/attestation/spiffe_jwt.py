"""SPIFFE JWT-SVID attestation (method ``jwt_svid``).

A workload proves what it is with a JWT-SVID from its SPIRE agent (``JWT-SVID.md``), presented as
the RFC 8693 ``subject_token`` with either token type:

* ``urn:ietf:params:oauth:token-type:jwt`` — the registered RFC 8693 type for "a JWT"; what
  generic OAuth clients send.
* ``urn:ietf:params:oauth:token-type:jwt-svid`` — not IANA-registered; a SPIFFE-specific label
  some clients use to say "this JWT is a JWT-SVID". Accepted as a synonym.

Verification, in order (each failure an ``AttestationError`` with a stable ``reason``):

1. size ≤ ``max_token_bytes`` (``too_large``); JWS Compact with JSON header and claims
   (``malformed``)
2. header: ``alg`` in the JWT-SVID allow-list RS/ES/PS 256/384/512 (``unsupported_algorithm``;
   ``none``, HS* and EdDSA are refused); only ``alg``, ``kid``, ``typ`` may appear, so
   ``jku``/``x5u``/``jwk``/``x5c``/``crit``… are refused (``forbidden_header``); ``typ``, if
   present, ``JWT`` or ``JOSE`` (``malformed``); ``kid`` present (``missing_kid``)
3. ``sub`` is a canonical SPIFFE ID (``invalid_spiffe_id``; uppercase scheme or trust domain,
   query, fragment, port, userinfo, percent-encoding, dot or empty segments, trailing slash and
   more than 2048 bytes are all refused) whose trust domain is configured
   (``unknown_trust_domain``)
4. ``kid`` names a ``jwt-svid`` key of *that* trust domain's bundle (``unknown_key``) whose key
   type fits ``alg`` (``unsupported_algorithm``)
5. ``aud`` contains this Warden's audience (``wrong_audience``); ``exp`` present and not passed,
   ``nbf`` (if any) reached, against the injected clock with ``leeway`` (``expired``,
   ``not_yet_valid``, ``missing_claim``)
6. py-spiffe ``JwtSvid.parse_and_validate`` with that bundle: the signature (``bad_signature``),
   and again alg, kid, exp (wall clock) and aud.

Steps 2-5 read the token before its signature is checked. That is safe because they can only
refuse; the bundle is chosen by the unverified ``sub``, and the signature must then verify with
*that* domain's keys, so a forged ``sub`` cannot pick a weaker bundle.

Configuration (the ``spiffe`` section of the Warden config file; paths relative to ``base_dir``):

    spiffe:
      audience: warden          # the aud JWT-SVIDs must carry to be accepted by this Warden
      max_token_bytes: 8192     # optional
      leeway: 5                 # optional, seconds of clock skew tolerated on exp/nbf
      max_clock_skew: 60        # optional, how far in the future `iat` may be (seconds)
      trust_domains:
        example.org:
          bundle_file: ./bundles/example.org.bundle.json   # SPIFFE bundle (JWKS), use=jwt-svid keys

Bundle files are read at construction and on ``reload()``; keys whose ``use`` is not
``jwt-svid`` (X.509 roots in a full SPIFFE bundle) are ignored, and a bundle with no such keys
accepts nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from spiffe import JwtBundle, JwtSvid

from warden.attestation.base import Channel, WorkloadIdentity, attestation_error, evidence_hash
from warden.attestation.bundles import BundleSource, FileBundleSource, canonical_trust_domain
from warden.attestation.spiffe_id import spiffe_selectors, validate_spiffe_id
from warden.core.clock import Clock, SystemClock
from warden.errors import AttestationError, InvalidParameterError, TokenInvalidError
from warden.tokens import jose_failure_reason, peek_header, peek_unverified

__all__ = [
    "ALLOWED_ALGORITHMS",
    "TOKEN_TYPE_JWT",
    "TOKEN_TYPE_JWT_SVID",
    "JWTSVIDAttestor",
    "from_config",
]

TOKEN_TYPE_JWT = "urn:ietf:params:oauth:token-type:jwt"  # noqa: S105 - a type URI, not a secret
TOKEN_TYPE_JWT_SVID = "urn:ietf:params:oauth:token-type:jwt-svid"  # noqa: S105 - same
ALLOWED_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512"}
)
ALLOWED_HEADERS = frozenset({"alg", "kid", "typ"})
_EC_ALGORITHM_FOR_CURVE = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
_METHOD = "jwt_svid"


def _fail(reason: str, message: str) -> AttestationError:
    return attestation_error(reason, message, method=_METHOD)


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail("malformed", f"jwt-svid `{name}` must be a number")
    try:
        return float(value)
    except OverflowError:
        raise _fail("malformed", f"jwt-svid `{name}` is out of range") from None


def _key_fits(key: object, alg: str) -> bool:
    if isinstance(key, ec.EllipticCurvePublicKey):
        return _EC_ALGORITHM_FOR_CURVE.get(key.curve.name) == alg
    if isinstance(key, rsa.RSAPublicKey):
        return alg[:2] in ("RS", "PS")
    return False


class JWTSVIDAttestor:
    """Attests workloads by their JWT-SVID; see the module docstring."""

    method = _METHOD
    token_types = frozenset({TOKEN_TYPE_JWT, TOKEN_TYPE_JWT_SVID})

    def __init__(
        self,
        bundles: Mapping[str, Path | BundleSource],
        audience: str,
        *,
        max_token_bytes: int = 8192,
        clock: Clock | None = None,
        leeway: float = 5,
        max_clock_skew: float = 60,
    ) -> None:
        if not isinstance(audience, str) or not audience:
            raise InvalidParameterError("spiffe `audience` must be a non-empty string")
        if not isinstance(max_token_bytes, int) or max_token_bytes <= 0:
            raise InvalidParameterError("spiffe `max_token_bytes` must be a positive integer")
        if (
            isinstance(leeway, bool)
            or not isinstance(leeway, int | float)
            or not (math.isfinite(leeway) and leeway >= 0)
        ):
            raise InvalidParameterError("spiffe `leeway` must be a non-negative number")
        if (
            isinstance(max_clock_skew, bool)
            or not isinstance(max_clock_skew, int | float)
            or not (math.isfinite(max_clock_skew) and max_clock_skew >= 0)
        ):
            raise InvalidParameterError("spiffe `max_clock_skew` must be a non-negative number")
        sources: dict[str, BundleSource] = {}
        for name, source in bundles.items():
            canonical_trust_domain(name)
            if isinstance(source, str | Path):
                source = FileBundleSource(name, Path(source))
            sources[name] = source
        self._sources = sources
        self._audience = audience
        self._max_bytes = max_token_bytes
        self._clock: Clock = clock or SystemClock()
        self._leeway = float(leeway)
        self._max_skew = float(max_clock_skew)

    @property
    def audience(self) -> str:
        return self._audience

    @property
    def trust_domains(self) -> frozenset[str]:
        return frozenset(self._sources)

    def reload(self) -> None:
        """Re-read every bundle file; on any error keep that domain's current bundle and raise."""
        for source in self._sources.values():
            if isinstance(source, FileBundleSource):
                source.reload()

    def _jwt_bundle(self, trust_domain: str) -> JwtBundle | None:
        source = self._sources.get(trust_domain)
        bundle = source.current() if source is not None else None
        return bundle.jwt if bundle is not None else None

    def attest(
        self, token: str, token_type: str, channel: Channel | None = None
    ) -> WorkloadIdentity:
        if token_type not in self.token_types:
            raise _fail("unsupported_token_type", "token type is not a jwt-svid type")
        if not isinstance(token, str) or not token:
            raise _fail("malformed", "jwt-svid must be a non-empty string")
        if (
            len(token) > self._max_bytes
            or len(token.encode("utf-8", "surrogatepass")) > self._max_bytes
        ):
            raise _fail("too_large", f"jwt-svid is larger than {self._max_bytes} bytes")
        try:
            header = peek_header(token)
            claims = peek_unverified(token)
        except TokenInvalidError as exc:
            raise _fail("malformed", f"jwt-svid is malformed: {exc.message}") from None

        # -- header --------------------------------------------------------------------------
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in ALLOWED_ALGORITHMS:
            raise _fail("unsupported_algorithm", "jwt-svid algorithm is not allowed")
        extra = sorted(set(header) - ALLOWED_HEADERS)
        if extra:
            raise _fail("forbidden_header", f"jwt-svid header `{extra[0][:40]}` is not allowed")
        if "typ" in header and header["typ"] not in ("JWT", "JOSE"):
            raise _fail("malformed", "jwt-svid `typ` must be `JWT` or `JOSE`")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise _fail("missing_kid", "jwt-svid header has no key id")

        # -- subject and trust domain ---------------------------------------------------------
        sub = claims.get("sub")
        if sub is None:
            raise _fail("missing_claim", "jwt-svid has no `sub` claim")
        try:
            spiffe_id = validate_spiffe_id(sub)
        except InvalidParameterError:
            raise _fail("invalid_spiffe_id", "jwt-svid `sub` is not a valid spiffe id") from None
        trust_domain = spiffe_id[len("spiffe://") :].split("/", 1)[0]
        if trust_domain not in self._sources:
            raise _fail(
                "unknown_trust_domain", f"trust domain `{trust_domain}` is not trusted here"
            )
        bundle = self._jwt_bundle(trust_domain)
        if bundle is None:
            raise _fail("unknown_key", f"trust domain `{trust_domain}` has no usable bundle")
        key = bundle.get_jwt_authority(kid)
        if key is None:
            raise _fail("unknown_key", f"no jwt-svid key `{kid[:64]}` in trust domain bundle")
        if not _key_fits(key, alg):
            raise _fail("unsupported_algorithm", f"algorithm `{alg}` does not fit key type")

        # -- audience and time ----------------------------------------------------------------
        aud = claims.get("aud")
        if aud is None:
            raise _fail("missing_claim", "jwt-svid has no `aud` claim")
        audiences = [aud] if isinstance(aud, str) else aud
        if not isinstance(audiences, list) or self._audience not in audiences:
            raise _fail("wrong_audience", "jwt-svid is not meant for this audience")
        exp = claims.get("exp")
        if exp is None:
            raise _fail("missing_claim", "jwt-svid has no `exp` claim")
        expires_at = _number(exp, "exp")
        now = self._clock.now()
        if now >= expires_at + self._leeway:
            raise _fail("expired", "jwt-svid has expired")
        nbf = claims.get("nbf")
        if nbf is not None and _number(nbf, "nbf") > now + self._leeway:
            raise _fail("not_yet_valid", "jwt-svid is not valid yet")
        iat = claims.get("iat")
        if iat is not None and _number(iat, "iat") > now + self._max_skew:
            raise _fail("not_yet_valid", "jwt-svid was issued in the future (`iat`)")

        # -- signature (py-spiffe) ------------------------------------------------------------
        try:
            svid = JwtSvid.parse_and_validate(token, bundle, {self._audience})
        except Exception as exc:  # py-spiffe wraps PyJWT; name the failure from the cause
            reason = jose_failure_reason(exc) or "bad_signature"
            message = f"jwt-svid verification failed: {reason.replace('_', ' ')}"
            raise _fail(reason, message) from exc
        if str(svid.spiffe_id) != spiffe_id:  # cannot happen: same bytes, checked twice
            raise _fail("invalid_spiffe_id", "jwt-svid subject changed during verification")

        return WorkloadIdentity(
            spiffe_id=spiffe_id,
            method=_METHOD,
            evidence_hash=evidence_hash(token),
            trust_domain=trust_domain,
            expires_at=expires_at,
            claims=dict(claims),
            selectors=spiffe_selectors(spiffe_id, trust_domain),
        )


def from_config(
    section: Mapping[str, Any], base_dir: Path | str | None = None, *, clock: Clock | None = None
) -> JWTSVIDAttestor:
    """Build the attestor from the ``spiffe`` config section (see the module docstring).

    ``section`` is the mapping under ``spiffe:`` (a mapping with a single ``spiffe`` key is
    unwrapped). Relative ``bundle_file`` paths are resolved against ``base_dir`` (default: the
    working directory). Raises InvalidParameterError naming the offending key.
    """
    if not isinstance(section, Mapping):
        raise InvalidParameterError("config `spiffe` must be a mapping")
    if "spiffe" in section and "audience" not in section and isinstance(section["spiffe"], Mapping):
        section = section["spiffe"]
    unknown = sorted(
        set(section) - {"audience", "trust_domains", "max_token_bytes", "leeway", "max_clock_skew"}
    )
    if unknown:
        raise InvalidParameterError(f"config `spiffe.{unknown[0]}` is not a known key")
    audience = section.get("audience")
    if not isinstance(audience, str) or not audience:
        raise InvalidParameterError("config `spiffe.audience` must be a non-empty string")
    domains = section.get("trust_domains")
    if not isinstance(domains, Mapping) or not domains:
        raise InvalidParameterError("config `spiffe.trust_domains` must map trust domains")
    base = Path(base_dir) if base_dir is not None else Path()
    bundles: dict[str, Path] = {}
    for name, entry in domains.items():
        key = f"spiffe.trust_domains.{name}"
        if not isinstance(entry, Mapping) or not isinstance(entry.get("bundle_file"), str):
            raise InvalidParameterError(f"config `{key}.bundle_file` must be a path")
        bundles[str(name)] = base / Path(entry["bundle_file"])
    options: dict[str, Any] = {}
    if "max_token_bytes" in section:
        value = section["max_token_bytes"]
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise InvalidParameterError(
                "config `spiffe.max_token_bytes` must be a positive integer"
            )
        options["max_token_bytes"] = value
    if "leeway" in section:
        value = section["leeway"]
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise InvalidParameterError("config `spiffe.leeway` must be a non-negative number")
        options["leeway"] = value
    if "max_clock_skew" in section:
        value = section["max_clock_skew"]
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise InvalidParameterError(
                "config `spiffe.max_clock_skew` must be a non-negative number"
            )
        options["max_clock_skew"] = value
    return JWTSVIDAttestor(bundles, audience, clock=clock, **options)
