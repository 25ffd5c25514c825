"""Mint JWT-SVIDs for the demo and the tests (a real workload gets them from SPIRE).

``DevTrustDomain`` is a one-key SPIFFE trust domain on disk:

    <directory>/<trust_domain>.key.pem       ES256 (P-256) private key, PKCS#8 PEM, mode 0600
    <directory>/<trust_domain>.bundle.json   its SPIFFE trust bundle (JWKS), e.g.
        {"keys": [{"use": "jwt-svid", "kty": "EC", "kid": "<thumbprint>", "crv": "P-256",
                   "x": "...", "y": "..."}],
         "spiffe_sequence": 1, "spiffe_refresh_hint": 300}

Point Warden's ``spiffe.trust_domains.<name>.bundle_file`` at the bundle file and it accepts the
SVIDs ``mint`` produces. Not for production: the key never rotates.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from warden.core.clock import SystemClock
from warden.core.ids import full_match
from warden.errors import InvalidParameterError
from warden.tokens import _jose

__all__ = ["DevTrustDomain"]

SVID_ALGORITHM = "ES256"
_TRUST_DOMAIN = re.compile(r"[a-z0-9._-]{1,255}")
_SVID_CLAIMS = frozenset({"sub", "aud", "exp", "iat"})


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600)


class DevTrustDomain:
    """A development trust domain: one ES256 key and its bundle file. Use ``create``/``load``."""

    def __init__(self, trust_domain: str, private_key: ec.EllipticCurvePrivateKey, directory: Path):
        if not isinstance(private_key.curve, ec.SECP256R1):
            raise InvalidParameterError("a dev trust domain key must be a p-256 key")
        self._trust_domain = trust_domain
        self._key = private_key
        self._directory = Path(directory)
        self._public_jwk = _jose.ec_public_jwk(private_key.public_key())
        self._kid = _jose.jwk_thumbprint(self._public_jwk)

    @staticmethod
    def _check_name(trust_domain: str) -> str:
        if not full_match(_TRUST_DOMAIN, trust_domain):
            raise InvalidParameterError(
                f"invalid trust domain `{trust_domain}`: "
                "use lowercase letters, digits, `.`, `_` or `-`"
            )
        return trust_domain

    @classmethod
    def create(cls, trust_domain: str, directory: Path) -> DevTrustDomain:
        """Generate a key, write it (0600) and the bundle file; replaces an existing pair."""
        cls._check_name(trust_domain)
        directory = Path(directory)
        if not directory.exists():
            directory.mkdir(mode=0o700, parents=True)
        domain = cls(trust_domain, ec.generate_private_key(ec.SECP256R1()), directory)
        pem = domain._key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        _write_private(domain.key_path, pem)
        domain.bundle_path.write_text(json.dumps(domain.bundle(), indent=2) + "\n")
        return domain

    @classmethod
    def load(cls, trust_domain: str, directory: Path) -> DevTrustDomain:
        """Read the key written by ``create`` (InvalidParameterError if absent or not P-256)."""
        cls._check_name(trust_domain)
        path = Path(directory) / f"{trust_domain}.key.pem"
        try:
            key = load_pem_private_key(path.read_bytes(), password=None)
        except FileNotFoundError:
            raise InvalidParameterError(
                f"no key for trust domain `{trust_domain}` in `{directory}`"
            ) from None
        except (ValueError, TypeError) as exc:
            raise InvalidParameterError(f"key file `{path}` is not a pem private key") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise InvalidParameterError(f"key file `{path}` is not an ec key")
        return cls(trust_domain, key, Path(directory))

    @classmethod
    def load_or_create(cls, trust_domain: str, directory: Path) -> DevTrustDomain:
        if (Path(directory) / f"{trust_domain}.key.pem").exists():
            return cls.load(trust_domain, directory)
        return cls.create(trust_domain, directory)

    @property
    def trust_domain(self) -> str:
        return self._trust_domain

    @property
    def kid(self) -> str:
        return self._kid

    @property
    def key_path(self) -> Path:
        return self._directory / f"{self._trust_domain}.key.pem"

    @property
    def bundle_path(self) -> Path:
        return self._directory / f"{self._trust_domain}.bundle.json"

    def bundle(self) -> dict[str, Any]:
        """The SPIFFE trust bundle (JWKS with one ``use: jwt-svid`` key)."""
        return {
            "keys": [{"use": "jwt-svid", **self._public_jwk, "kid": self._kid}],
            "spiffe_sequence": 1,
            "spiffe_refresh_hint": 300,
        }

    def mint(
        self,
        spiffe_id: str,
        audience: str | list[str],
        ttl: float = 300,
        now: float | None = None,
        extra_claims: Mapping[str, Any] | None = None,
    ) -> str:
        """A JWT-SVID for ``spiffe_id`` (not validated here, so tests can mint bad ones).

        Header ``alg: ES256``, ``kid``, ``typ: JWT``; claims ``sub``, ``aud`` (a string when
        one audience), ``iat`` and ``exp = iat + ttl`` plus ``extra_claims``, which may not
        replace those four.
        """
        issued_at = int(SystemClock().now() if now is None else now)
        extra = dict(extra_claims or {})
        clash = _SVID_CLAIMS.intersection(extra)
        if clash:
            raise InvalidParameterError(f"extra claim `{min(clash)}` would replace an svid claim")
        claims = {
            **extra,
            "sub": spiffe_id,
            "aud": audience if isinstance(audience, str) or len(audience) != 1 else audience[0],
            "iat": issued_at,
            "exp": int(issued_at + ttl),
        }
        return self.sign(claims)

    def sign(self, claims: Mapping[str, Any], headers: Mapping[str, Any] | None = None) -> str:
        """Sign arbitrary claims with this domain's key (tests: odd headers, missing claims).

        ``headers`` are merged over ``{"kid": <kid>, "typ": "JWT"}`` (a None value removes the
        header); ``alg`` is always ES256.
        """
        merged: dict[str, Any] = {"kid": self._kid, "typ": "JWT", **(headers or {})}
        merged.pop("alg", None)
        drop_typ = merged.get("typ") is None
        merged = {name: value for name, value in merged.items() if value is not None}
        if drop_typ:
            merged["typ"] = ""  # PyJWT leaves out an empty typ
        return _jose.encode(claims, self._key, alg=SVID_ALGORITHM, headers=merged)
