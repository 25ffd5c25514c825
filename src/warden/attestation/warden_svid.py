"""Warden's own SPIFFE trust domain: the JWT-SVIDs its local workload API hands out.

``WardenTrustDomain`` holds one ES256 key (a ``DevTrustDomain`` on disk under
``<data dir>/workload-trust/``) for the trust domain named by ``workload_api.trust_domain``
(default ``warden.local``). Its bundle is served at ``GET /.well-known/spiffe-bundle`` so
others can verify the SVIDs too.

An SVID is issued only after the caller's entries matched (``service/workload.py``):
``sub = spiffe://<own trust domain>/agent/<agent name>``, ``aud`` the SVID audience, a short
``exp``, and a private claim ``wat`` (Warden attestation) recording how the caller was proven:
``{"method": "unix", "via": "workload_api", "entry": …, "selectors": […],
"evidence_hash": …}``. ``WardenSVIDAttestor`` verifies these SVIDs like any JWT-SVID and binds
the identity to the agent named in the path; the task then records the original attestation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from warden.attestation.base import Channel, WorkloadIdentity, attestation_error
from warden.attestation.bundles import StaticBundleSource, parse_bundle
from warden.attestation.spiffe_jwt import JWTSVIDAttestor
from warden.core.clock import Clock
from warden.core.ids import validate_agent_name
from warden.errors import InvalidParameterError
from warden.tokens.svid import DevTrustDomain

ORIGIN_CLAIM = "wat"
WORKLOAD_TRUST_DIR = "workload-trust"


class WardenTrustDomain:
    def __init__(self, name: str, data_dir: Path, audience: str, clock: Clock) -> None:
        self.name = name
        self.audience = audience
        self._clock = clock
        self._domain = DevTrustDomain.load_or_create(name, Path(data_dir) / WORKLOAD_TRUST_DIR)

    def spiffe_id(self, agent_name: str) -> str:
        return f"spiffe://{self.name}/agent/{validate_agent_name(agent_name)}"

    def bundle(self) -> dict[str, Any]:
        return self._domain.bundle()

    def issue(
        self, agent_name: str, origin: dict[str, Any], *, ttl: float, audience: str | None = None
    ) -> tuple[str, float]:
        """A JWT-SVID for the agent; returns (token, expiry)."""
        now = self._clock.now()
        token = self._domain.mint(
            self.spiffe_id(agent_name),
            audience or self.audience,
            ttl=ttl,
            now=now,
            extra_claims={ORIGIN_CLAIM: origin},
        )
        return token, float(int(now) + int(ttl))

    def attestor(self, *, clock: Clock) -> WardenSVIDAttestor:
        bundle = parse_bundle(self.name, self.bundle(), origin="of warden's own trust domain")
        inner = JWTSVIDAttestor({self.name: StaticBundleSource(bundle)}, self.audience, clock=clock)
        return WardenSVIDAttestor(inner, self.name)


class WardenSVIDAttestor:
    """JWT-SVIDs of Warden's own trust domain, bound to the agent their path names."""

    method = "jwt_svid"

    def __init__(self, inner: JWTSVIDAttestor, trust_domain: str) -> None:
        self._inner = inner
        self._prefix = f"spiffe://{trust_domain}/agent/"
        self.token_types = inner.token_types

    def attest(
        self, token: str, token_type: str, channel: Channel | None = None
    ) -> WorkloadIdentity:
        identity = self._inner.attest(token, token_type, channel)
        spiffe_id = identity.spiffe_id or ""
        name = spiffe_id[len(self._prefix) :] if spiffe_id.startswith(self._prefix) else ""
        try:
            validate_agent_name(name)
        except InvalidParameterError:
            raise attestation_error(
                "invalid_spiffe_id", "warden svid does not name an agent", method=self.method
            ) from None
        origin = identity.claims.get(ORIGIN_CLAIM)
        if not isinstance(origin, dict):
            raise attestation_error(
                "missing_claim", "warden svid has no attestation claim", method=self.method
            )
        return WorkloadIdentity(
            spiffe_id=identity.spiffe_id,
            method=identity.method,
            evidence_hash=identity.evidence_hash,
            trust_domain=identity.trust_domain,
            expires_at=identity.expires_at,
            claims=identity.claims,
            selectors=identity.selectors,
            agent=name,
            details={"origin": origin},
        )
