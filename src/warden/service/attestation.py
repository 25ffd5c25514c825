"""Build the attestation methods from Settings (the composition root calls this once).

Everything configured becomes one ``AttestorRegistry``:

* ``…:jwt``, ``…:jwt-svid``, ``…:id_token`` → ``JWTRouter`` over the JWT-SVID attestor (the
  ``spiffe.trust_domains``), the OIDC/Kubernetes issuers (``oidc.issuers``) and Warden's own
  trust domain (the JWT-SVIDs its workload socket issues);
* ``…:tls-client-certificate`` → ``X509SVIDAttestor`` (trust domains with X.509 roots);
* ``…:join-token`` → ``JoinTokenAttestor``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from warden.attestation.base import AttestorRegistry
from warden.attestation.bundles import BundleSource, EndpointBundleSource, FileBundleSource
from warden.attestation.join_token import JoinTokenAttestor
from warden.attestation.jwt_router import JWTRouter
from warden.attestation.oidc import OIDCAttestor
from warden.attestation.spiffe_jwt import JWTSVIDAttestor
from warden.attestation.warden_svid import WardenTrustDomain
from warden.attestation.x509_svid import X509SVIDAttestor
from warden.config import Settings
from warden.core.clock import Clock
from warden.core.ports import Store
from warden.errors import InvalidParameterError


@dataclass
class Attestation:
    registry: AttestorRegistry
    own: WardenTrustDomain
    sources: dict[str, BundleSource] = field(default_factory=dict)
    router: JWTRouter | None = None
    x509: X509SVIDAttestor | None = None

    def refresh_due(self) -> None:
        """Refresh bundle endpoints whose refresh hint has passed (never raises)."""
        for source in self.sources.values():
            source.refresh_due()


def bundle_sources(settings: Settings, clock: Clock) -> dict[str, BundleSource]:
    sources: dict[str, BundleSource] = {}
    for td in settings.trust_domains:
        if td.name == settings.workload_trust_domain:
            raise InvalidParameterError(
                f"trust domain `{td.name}` is warden's own (workload_api.trust_domain)"
            )
        if td.bundle_endpoint:
            sources[td.name] = EndpointBundleSource(
                td.name, td.bundle_endpoint, ca_file=td.bundle_endpoint_ca_file, clock=clock
            )
        else:
            sources[td.name] = FileBundleSource(td.name, td.bundle_file, td.x509_bundle_file)
    return sources


def build_attestation(settings: Settings, store: Store, clock: Clock) -> Attestation:
    sources = bundle_sources(settings, clock)
    own = WardenTrustDomain(
        settings.workload_trust_domain, settings.data_dir, settings.svid_audience, clock
    )
    jwt_svid = JWTSVIDAttestor(sources, settings.svid_audience, clock=clock) if sources else None
    router = JWTRouter(
        jwt_svid=jwt_svid,
        oidc=[OIDCAttestor(issuer, clock=clock) for issuer in settings.oidc_issuers],
        own=own.attestor(clock=clock),
        own_trust_domain=own.name,
    )
    registry = AttestorRegistry([router, JoinTokenAttestor(store, clock)])
    x509 = X509SVIDAttestor(sources, clock=clock) if sources else None
    if x509 is not None:
        registry.register(x509)
    return Attestation(registry, own, sources, router, x509)
