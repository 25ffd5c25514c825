"""X.509-SVIDs presented as TLS client certificates (method ``x509_svid``).

The workload connects to the token endpoint with mutual TLS, its X.509-SVID as the client
certificate, and sends the token exchange with
``subject_token_type=urn:warden:params:oauth:token-type:tls-client-certificate`` and the same
leaf certificate (PEM, or base64 DER) as ``subject_token``. The TLS handshake proved possession
of the leaf's private key; ``Channel.tls_client_chain`` carries the chain the server saw (see
``api/tls.py`` for how it gets there). Checks, in order (reasons in backticks):

1. a client certificate was presented on this connection (``no_client_certificate``) and the
   ``subject_token`` is that certificate (``certificate_mismatch``; ``malformed``)
2. the leaf (``X509-SVID.md`` §4): exactly one URI SAN holding a valid SPIFFE ID with a path
   (``invalid_spiffe_id``, via py-spiffe); basic constraints ``cA=false``; key usage present,
   with ``digitalSignature`` and neither ``keyCertSign`` nor ``cRLSign``; extended key usage, if
   present, includes ``clientAuth`` (``invalid_svid``)
3. its trust domain is configured with X.509 roots (``unknown_trust_domain``)
4. RFC 5280 path validation from the leaf (plus any intermediates the client sent) to a root of
   *that* trust domain's bundle, at the injected clock's time (pyca/cryptography's verifier:
   signatures, validity periods, CA constraints, path length; ``untrusted_chain``,
   ``expired``)

Step 4 is why the TLS layer's own verification (against every trust domain's roots at once) is
not enough: a workload of trust domain A must not pass as ``spiffe://B/…`` by chaining to A's
CA.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from collections.abc import Mapping

from cryptography import x509
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

from warden.attestation.base import Channel, WorkloadIdentity, attestation_error, evidence_hash
from warden.attestation.bundles import BundleSource
from warden.attestation.spiffe_id import spiffe_selectors, validate_spiffe_id
from warden.core.clock import Clock, SystemClock
from warden.errors import AttestationError, InvalidParameterError

__all__ = ["TOKEN_TYPE_TLS_CLIENT_CERT", "X509SVIDAttestor", "leaf_from_token"]

TOKEN_TYPE_TLS_CLIENT_CERT = "urn:warden:params:oauth:token-type:tls-client-certificate"  # noqa: S105 - a URN
METHOD = "x509_svid"
MAX_CHAIN = 5
_PEM = re.compile(r"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", re.S)


def _fail(reason: str, message: str) -> AttestationError:
    return attestation_error(reason, message, method=METHOD)


def leaf_from_token(token: str) -> bytes:
    """The DER bytes of the certificate in ``subject_token`` (PEM, base64 or base64url DER)."""
    if not isinstance(token, str) or not token or len(token) > 20000:
        raise _fail("malformed", "subject token must be the client certificate")
    match = _PEM.search(token)
    body = match[1] if match else token
    compact = "".join(body.split())
    try:
        padded = compact + "=" * (-len(compact) % 4)
        if "-" in compact or "_" in compact:
            return base64.urlsafe_b64decode(padded)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        raise _fail("malformed", "subject token is not a certificate") from None


def _spiffe_id_of(leaf: x509.Certificate) -> str:
    try:
        san = leaf.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    except x509.ExtensionNotFound:
        raise _fail("invalid_spiffe_id", "certificate has no uri san") from None
    uris = san.get_values_for_type(x509.UniformResourceIdentifier)  # type: ignore[attr-defined]
    if len(uris) != 1:
        raise _fail(
            "invalid_spiffe_id", f"certificate must have exactly one uri san, not {len(uris)}"
        )
    try:
        spiffe_id = validate_spiffe_id(uris[0])
    except InvalidParameterError:
        raise _fail("invalid_spiffe_id", "certificate uri san is not a valid spiffe id") from None
    if "/" not in spiffe_id[len("spiffe://") :]:
        raise _fail("invalid_spiffe_id", "an x509-svid spiffe id needs a path")
    return spiffe_id


def _check_leaf(leaf: x509.Certificate) -> None:
    try:
        constraints = leaf.extensions.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS).value
        if constraints.ca:  # type: ignore[attr-defined]
            raise _fail("invalid_svid", "an x509-svid must not be a ca certificate")
    except x509.ExtensionNotFound:
        pass
    try:
        usage = leaf.extensions.get_extension_for_oid(ExtensionOID.KEY_USAGE).value
    except x509.ExtensionNotFound:
        raise _fail("invalid_svid", "an x509-svid needs a key usage extension") from None
    if not usage.digital_signature:  # type: ignore[attr-defined]
        raise _fail("invalid_svid", "an x509-svid needs the digitalSignature key usage")
    if usage.key_cert_sign or usage.crl_sign:  # type: ignore[attr-defined]
        raise _fail("invalid_svid", "an x509-svid must not sign certificates or crls")
    try:
        eku = leaf.extensions.get_extension_for_oid(ExtensionOID.EXTENDED_KEY_USAGE).value
    except x509.ExtensionNotFound:
        return
    if ExtendedKeyUsageOID.CLIENT_AUTH not in eku:  # type: ignore[operator]
        raise _fail("invalid_svid", "the x509-svid is not for client authentication")


class X509SVIDAttestor:
    method = METHOD
    token_types = frozenset({TOKEN_TYPE_TLS_CLIENT_CERT})

    def __init__(self, sources: Mapping[str, BundleSource], *, clock: Clock | None = None) -> None:
        self._sources = dict(sources)
        self._clock: Clock = clock or SystemClock()

    @property
    def trust_domains(self) -> frozenset[str]:
        return frozenset(self._sources)

    def roots(self) -> list[x509.Certificate]:
        """Every trust domain's current X.509 roots (the TLS listener's client CA list)."""
        out: list[x509.Certificate] = []
        for source in self._sources.values():
            bundle = source.current()
            if bundle is not None:
                out.extend(bundle.x509_roots)
        return out

    def attest(
        self, token: str, token_type: str, channel: Channel | None = None
    ) -> WorkloadIdentity:
        chain = channel.tls_client_chain if channel is not None else ()
        if not chain:
            raise _fail(
                "no_client_certificate", "no tls client certificate was presented on this request"
            )
        if len(chain) > MAX_CHAIN:
            raise _fail("untrusted_chain", "the client certificate chain is too long")
        if leaf_from_token(token) != chain[0]:
            raise _fail(
                "certificate_mismatch", "subject token is not the certificate presented over tls"
            )
        try:
            certs = [x509.load_der_x509_certificate(der) for der in chain]
        except ValueError:
            raise _fail("malformed", "the client certificate cannot be parsed") from None
        leaf = certs[0]
        spiffe_id = _spiffe_id_of(leaf)
        _check_leaf(leaf)
        trust_domain = spiffe_id[len("spiffe://") :].split("/", 1)[0]
        source = self._sources.get(trust_domain)
        bundle = source.current() if source is not None else None
        if bundle is None or not bundle.x509_roots:
            raise _fail(
                "unknown_trust_domain", f"trust domain `{trust_domain}` is not trusted here"
            )
        now = dt.datetime.fromtimestamp(self._clock.now(), dt.UTC)
        if not (leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc):
            reason = "expired" if now > leaf.not_valid_after_utc else "not_yet_valid"
            raise _fail(reason, "the x509-svid is outside its validity period")
        verifier = (
            verification.PolicyBuilder()
            .store(verification.Store(list(bundle.x509_roots)))
            .time(now)
            .max_chain_depth(MAX_CHAIN)
            .extension_policies(
                ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(),
                ee_policy=verification.ExtensionPolicy.permit_all(),
            )
            .build_client_verifier()
        )
        try:
            verifier.verify(leaf, certs[1:])
        except verification.VerificationError as exc:
            raise _fail(
                "untrusted_chain",
                f"the x509-svid does not chain to trust domain `{trust_domain}`: {str(exc)[:200]}",
            ) from None
        return WorkloadIdentity(
            spiffe_id=spiffe_id,
            method=METHOD,
            evidence_hash=evidence_hash(chain[0]),
            trust_domain=trust_domain,
            expires_at=leaf.not_valid_after_utc.timestamp(),
            claims={"serial": format(leaf.serial_number, "x")},
            selectors=spiffe_selectors(spiffe_id, trust_domain),
        )
