"""Workload identity: SPIFFE trust domains, OIDC issuers, the local workload API.

YAML: ``spiffe: {audience, trust_domains}``, ``oidc: {issuers}``,
``workload_api: {socket, trust_domain, svid_ttl}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from warden.attestation.oidc import OIDCIssuer
from warden.config._values import Rel, duration
from warden.errors import InvalidParameterError


@dataclass(frozen=True)
class TrustDomainConfig:
    """One SPIFFE trust domain: a bundle file or a bundle endpoint, plus optional PEM roots."""

    name: str
    bundle_file: Path | None = None
    x509_bundle_file: Path | None = None  # PEM roots for X.509-SVIDs (--tls-client-ca TD=PATH)
    bundle_endpoint: str | None = None  # SPIFFE bundle endpoint URL (https_web profile)
    bundle_endpoint_ca_file: Path | None = None  # private CA for that endpoint

    @property
    def source(self) -> str:
        """Where the bundle comes from, for humans."""
        parts = [str(p) for p in (self.bundle_file, self.x509_bundle_file) if p is not None]
        if self.bundle_endpoint:
            parts.append(self.bundle_endpoint)
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class IdentitySettings:
    svid_audience: str
    trust_domains: tuple[TrustDomainConfig, ...]
    oidc_issuers: tuple[OIDCIssuer, ...]
    workload_socket: Path | None
    workload_trust_domain: str
    workload_svid_ttl: float


def identity_yaml(raw: dict[str, Any], rel: Rel) -> dict[str, Any]:
    out: dict[str, Any] = {}
    spiffe = raw.get("spiffe") or {}
    if "audience" in spiffe:
        out["svid_audience"] = str(spiffe["audience"])
    domains = [
        _trust_domain(name, td, rel) for name, td in (spiffe.get("trust_domains") or {}).items()
    ]
    if domains:
        out["trust_domains"] = tuple(domains)
    oidc = raw.get("oidc") or {}
    issuers = []
    for index, item in enumerate(oidc.get("issuers") or []):
        issuers.append(_oidc_issuer(item, f"oidc.issuers[{index}]", rel))
    if issuers:
        out["oidc_issuers"] = tuple(issuers)
    workload = raw.get("workload_api") or {}
    if "socket" in workload:
        out["workload_socket"] = rel(str(workload["socket"]))
    if "trust_domain" in workload:
        out["workload_trust_domain"] = str(workload["trust_domain"])
    if "svid_ttl" in workload:
        out["workload_svid_ttl"] = duration(workload["svid_ttl"], "workload_api.svid_ttl")
    return out


def _trust_domain(name: Any, td: Any, rel: Rel) -> TrustDomainConfig:
    key = f"spiffe.trust_domains.{name}"
    known = {"bundle_file", "x509_bundle_file", "bundle_endpoint", "bundle_endpoint_ca_file"}
    if not isinstance(td, dict) or not ({"bundle_file", "bundle_endpoint"} & set(td)):
        raise InvalidParameterError(f"config `{key}` needs `bundle_file` or `bundle_endpoint`")
    unknown = sorted(set(td) - known)
    if unknown:
        raise InvalidParameterError(f"config `{key}.{unknown[0]}` is not a known key")
    if "bundle_file" in td and "bundle_endpoint" in td:
        raise InvalidParameterError(
            f"config `{key}`: give `bundle_file` or `bundle_endpoint`, not both"
        )
    return TrustDomainConfig(
        str(name),
        bundle_file=rel(str(td["bundle_file"])) if "bundle_file" in td else None,
        x509_bundle_file=rel(str(td["x509_bundle_file"])) if "x509_bundle_file" in td else None,
        bundle_endpoint=str(td["bundle_endpoint"]) if "bundle_endpoint" in td else None,
        bundle_endpoint_ca_file=rel(str(td["bundle_endpoint_ca_file"]))
        if "bundle_endpoint_ca_file" in td
        else None,
    )


def _oidc_issuer(item: Any, key: str, rel: Rel) -> OIDCIssuer:
    if not isinstance(item, dict):
        raise InvalidParameterError(f"config `{key}` must be a mapping")
    known = {
        "issuer", "audience", "kind", "jwks_uri", "ca_file", "selectors", "jwks_refresh",
        "jwks_ttl", "min_refresh_interval", "timeout",
    }  # fmt: skip
    unknown = sorted(set(item) - known)
    if unknown:
        raise InvalidParameterError(f"config `{key}.{unknown[0]}` is not a known key")
    selectors = item.get("selectors") or {}
    if not isinstance(selectors, dict):
        raise InvalidParameterError(f"config `{key}.selectors` must map claims to selectors")
    options: dict[str, Any] = {}
    for name in ("jwks_refresh", "jwks_ttl", "min_refresh_interval", "timeout"):
        if name in item:
            options[name] = duration(item[name], f"{key}.{name}")
    return OIDCIssuer(
        issuer=str(item.get("issuer", "")),
        audience=str(item.get("audience", "")),
        kind=str(item.get("kind", "oidc")),
        jwks_uri=str(item["jwks_uri"]) if item.get("jwks_uri") else None,
        ca_file=rel(str(item["ca_file"])) if item.get("ca_file") else None,
        selectors={str(k): str(v) for k, v in selectors.items()},
        **options,
    )
