"""SPIFFE trust bundles (``SPIFFE_Trust_Domain_and_Bundle.md`` §4), from a file or an endpoint.

A bundle is a JWK Set: ``use: jwt-svid`` keys verify JWT-SVIDs, ``use: x509-svid`` keys carry
one CA certificate each (``x5c[0]``) that X.509-SVIDs chain to. Keys with another or no ``use``
are ignored; an empty ``keys`` list is a trust domain that trusts nothing. ``spiffe_sequence``
and ``spiffe_refresh_hint`` are read when present.

Sources (``BundleSource.current()`` returns the bundle to verify with):

* ``FileBundleSource`` — a bundle file (re-read on ``reload()``), optionally plus a PEM file
  of X.509 roots (``x509_bundle_file``, what ``--tls-client-ca TD=PATH`` sets).
* ``EndpointBundleSource`` — a SPIFFE bundle endpoint URL (``https_web`` profile: web PKI, or a
  private CA file; plain ``http://`` only on loopback). Fetched at start and again when the
  bundle's ``spiffe_refresh_hint`` (default 300 s, clamped to 10 s - 1 day) has passed. A failed
  refresh keeps the last good bundle and retries after ``min(hint, 30 s)``; a fetched bundle
  whose ``spiffe_sequence`` is lower than the one held is refused (a replayed old bundle must
  not resurrect removed keys). With no good bundle yet, the trust domain accepts nothing.
* ``StaticBundleSource`` — a bundle built in process (Warden's own trust domain).

Refreshes run lazily on ``current()`` and from Warden's background loop (``refresh_due``), under
a lock so one caller fetches while the others keep using the bundle they have.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cryptography import x509
from spiffe import JwtBundle, TrustDomain

from warden.attestation._http import FetchError, check_url, fetch_json
from warden.core.clock import Clock, SystemClock
from warden.errors import InvalidParameterError

__all__ = [
    "BundleSource",
    "EndpointBundleSource",
    "FileBundleSource",
    "StaticBundleSource",
    "TrustBundle",
    "parse_bundle",
    "parse_pem_roots",
]

log = logging.getLogger("warden.attestation.bundles")

DEFAULT_REFRESH_HINT = 300.0
MIN_REFRESH = 10.0
MAX_REFRESH = 86400.0
RETRY_AFTER_FAILURE = 30.0


@dataclass(frozen=True)
class TrustBundle:
    trust_domain: str
    jwt: JwtBundle | None
    x509_roots: tuple[x509.Certificate, ...] = ()
    sequence: int | None = None
    refresh_hint: float | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


def canonical_trust_domain(name: object) -> str:
    try:
        canonical = TrustDomain(name).name if isinstance(name, str) else None
    except Exception:  # py-spiffe TrustDomainError
        canonical = None
    if canonical is None or canonical != name:
        raise InvalidParameterError(f"invalid trust domain name `{name}`")
    return str(canonical)


def parse_bundle(trust_domain: str, document: object, *, origin: str) -> TrustBundle:
    """Parse a SPIFFE bundle document; InvalidParameterError naming ``origin`` when invalid."""
    where = f"trust domain `{trust_domain}`: bundle {origin}"
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise InvalidParameterError(f"{where} has no `keys` list")
    keys = [k for k in document["keys"] if isinstance(k, dict)]
    jwt_keys = [k for k in keys if k.get("use") == "jwt-svid"]
    try:
        jwt = JwtBundle.parse(TrustDomain(trust_domain), json.dumps({"keys": jwt_keys}).encode())
    except Exception as exc:  # py-spiffe's bundle errors
        raise InvalidParameterError(f"{where} is invalid: {exc}") from exc
    roots: list[x509.Certificate] = []
    for key in keys:
        if key.get("use") != "x509-svid":
            continue
        chain = key.get("x5c")
        if not isinstance(chain, list) or not chain or not isinstance(chain[0], str):
            continue  # the spec: a key without x5c is ignored
        try:
            roots.append(x509.load_der_x509_certificate(base64.b64decode(chain[0], validate=True)))
        except (ValueError, binascii.Error):
            # unusable key: ignored like any other key this Warden cannot use (never trusted)
            log.warning("%s: ignoring an x509-svid key whose x5c is not a certificate", where)
    sequence = document.get("spiffe_sequence")
    hint = document.get("spiffe_refresh_hint")
    return TrustBundle(
        trust_domain=trust_domain,
        jwt=jwt,
        x509_roots=tuple(roots),
        sequence=sequence if isinstance(sequence, int) and not isinstance(sequence, bool) else None,
        refresh_hint=float(hint)
        if isinstance(hint, int | float) and not isinstance(hint, bool) and hint > 0
        else None,
        raw=document,
    )


def parse_pem_roots(data: bytes, *, origin: str) -> tuple[x509.Certificate, ...]:
    try:
        roots = tuple(x509.load_pem_x509_certificates(data))
    except ValueError as exc:
        raise InvalidParameterError(f"{origin} holds no pem certificates") from exc
    return roots


class BundleSource(Protocol):
    @property
    def trust_domain(self) -> str: ...

    def current(self) -> TrustBundle | None:
        """The bundle to verify with now, or None when none was ever loaded (trust nothing)."""
        ...

    def refresh_due(self) -> None:
        """Refresh if it is time (endpoint sources); never raises."""
        ...


class StaticBundleSource:
    def __init__(self, bundle: TrustBundle) -> None:
        self._bundle = bundle

    @property
    def trust_domain(self) -> str:
        return self._bundle.trust_domain

    def current(self) -> TrustBundle | None:
        return self._bundle

    def refresh_due(self) -> None:
        return None


class FileBundleSource:
    """A bundle file and/or a PEM file of X.509 roots; read now and on ``reload()``."""

    def __init__(self, trust_domain: str, path: Path | None, x509_pem: Path | None = None) -> None:
        self._td = canonical_trust_domain(trust_domain)
        if path is None and x509_pem is None:
            raise InvalidParameterError(f"trust domain `{trust_domain}` has no bundle")
        self._path = None if path is None else Path(path)
        self._pem = None if x509_pem is None else Path(x509_pem)
        self._bundle: TrustBundle | None = None
        self.reload()

    @property
    def trust_domain(self) -> str:
        return self._td

    @property
    def path(self) -> Path | None:
        return self._path

    def _read(self, path: Path) -> bytes:
        try:
            return path.read_bytes()
        except OSError as exc:
            raise InvalidParameterError(
                f"trust domain `{self._td}`: cannot read bundle file `{path}`: {exc.strerror}"
            ) from exc

    def reload(self) -> None:
        """Re-read the files; on any error keep the current bundle and raise."""
        bundle = TrustBundle(self._td, None)
        if self._path is not None:
            try:
                document = json.loads(self._read(self._path))
            except ValueError as exc:
                raise InvalidParameterError(
                    f"trust domain `{self._td}`: bundle file `{self._path}` is not json"
                ) from exc
            bundle = parse_bundle(self._td, document, origin=f"file `{self._path}`")
        if self._pem is not None:
            roots = parse_pem_roots(
                self._read(self._pem), origin=f"trust domain `{self._td}`: `{self._pem}`"
            )
            bundle = TrustBundle(
                self._td,
                bundle.jwt,
                bundle.x509_roots + roots,
                bundle.sequence,
                bundle.refresh_hint,
                bundle.raw,
            )
        self._bundle = bundle

    def current(self) -> TrustBundle | None:
        return self._bundle

    def refresh_due(self) -> None:
        return None


class EndpointBundleSource:
    """A SPIFFE bundle endpoint, refreshed on its ``spiffe_refresh_hint``; see the module doc."""

    def __init__(
        self,
        trust_domain: str,
        url: str,
        *,
        ca_file: Path | None = None,
        clock: Clock | None = None,
        timeout: float = 5.0,
        fetch: Callable[..., Any] = fetch_json,
    ) -> None:
        self._td = canonical_trust_domain(trust_domain)
        self._url = check_url(url, f"trust domain `{trust_domain}` bundle endpoint")
        self._ca_file = ca_file
        self._clock: Clock = clock or SystemClock()
        self._timeout = timeout
        self._fetch = fetch
        self._lock = threading.Lock()
        self._bundle: TrustBundle | None = None
        self._next_refresh = 0.0
        self.last_error: str | None = None
        self.refresh_due()

    @property
    def trust_domain(self) -> str:
        return self._td

    @property
    def next_refresh(self) -> float:
        return self._next_refresh

    def current(self) -> TrustBundle | None:
        if self._clock.now() >= self._next_refresh:
            self.refresh_due()
        return self._bundle

    def refresh_due(self) -> None:
        if self._clock.now() < self._next_refresh or not self._lock.acquire(blocking=False):
            return  # not due, or another thread is fetching: keep using what we have
        try:
            self._refresh()
        finally:
            self._lock.release()

    def _refresh(self) -> None:
        now = self._clock.now()
        try:
            fetched = self._fetch(self._url, ca_file=self._ca_file, timeout=self._timeout)
            bundle = parse_bundle(self._td, fetched.document, origin=f"from `{self._url}`")
            held = self._bundle
            if (
                held is not None
                and held.sequence is not None
                and (bundle.sequence is None or bundle.sequence < held.sequence)
            ):
                raise InvalidParameterError(
                    f"bundle from `{self._url}` has sequence {bundle.sequence}, "
                    f"older than the {held.sequence} held"
                )
        except (FetchError, InvalidParameterError) as exc:
            message = exc.message
            self.last_error = message
            hint = (self._bundle.refresh_hint if self._bundle else None) or DEFAULT_REFRESH_HINT
            self._next_refresh = now + min(hint, RETRY_AFTER_FAILURE)
            log.warning(
                "trust domain %s: bundle refresh failed, keeping the last good: %s",
                self._td,
                message,
            )
            return
        self._bundle = bundle
        self.last_error = None
        hint = bundle.refresh_hint or DEFAULT_REFRESH_HINT
        self._next_refresh = now + max(MIN_REFRESH, min(MAX_REFRESH, hint))
