"""The local workload API: attest the calling process, match entries, hand out a JWT-SVID.

``issue_svid`` runs for each request on the workload socket: ``attestation.unix.attest_peer``
(kernel peer credentials, executable path and digest, the pid-reuse guard), then the same entry
resolution the token endpoint uses, then a JWT-SVID of Warden's own trust domain for the agent
(``attestation.warden_svid``). The agent exchanges that SVID at ``POST /oauth2/token`` as usual;
the task then records ``method: unix`` with the entry and selectors matched here.

Every outcome is audited: ``workload.svid_issued`` or ``workload.refused`` (with the reason,
the pid, uid and executable; never a token).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from warden.attestation.base import WorkloadIdentity
from warden.attestation.unix import PeerCredentials, attest_peer
from warden.attestation.warden_svid import WardenTrustDomain
from warden.core.model import AgentStatus
from warden.errors import AttestationError, InvalidParameterError
from warden.service.auditing import Auditor
from warden.service.entries import EntryService

VIA = "workload_api"


class WorkloadService:
    def __init__(
        self,
        entries: EntryService,
        own: WardenTrustDomain,
        auditor: Auditor,
        *,
        svid_ttl: float,
    ) -> None:
        self._entries = entries
        self._own = own
        self._audit = auditor
        self._ttl = svid_ttl
        # tests set this to act between the kernel's answer and the /proc inspection
        self.inspecting: Callable[[PeerCredentials], None] | None = None

    @property
    def trust_domain(self) -> WardenTrustDomain:
        return self._own

    def issue_svid(self, peer: PeerCredentials, audience: object = None) -> dict[str, Any]:
        if audience is None:
            audience = self._own.audience
        if not isinstance(audience, str) or not audience or len(audience) > 200:
            raise InvalidParameterError("`audience` must be a short non-empty string")
        caller = {"pid": peer.pid, "uid": peer.uid, "gid": peer.gid}
        identity: WorkloadIdentity | None = None
        try:
            identity = attest_peer(peer, inspecting=self.inspecting)
            caller.update(path=identity.claims["path"], sha256=identity.claims["sha256"])
            resolution = self._entries.resolve(identity)
            if resolution.agent.status is not AgentStatus.ACTIVE:
                raise AttestationError(
                    f"agent `{resolution.agent.name}` is {resolution.agent.status.value}",
                    detail={"reason": "agent_inactive", "method": "unix"},
                )
        except AttestationError as exc:
            self._audit.record(
                "workload.refused",
                f"unix:pid:{peer.pid}",
                {
                    "reason": exc.detail.get("reason", exc.code),
                    "detail": exc.message,
                    "caller": caller,
                    "pidfd": peer.pidfd_source,
                },
            )
            raise
        agent, entry = resolution.agent, resolution.entry
        matched = sorted(set(entry.selectors) & identity.selectors)
        origin = {
            "method": identity.method,
            "via": VIA,
            "entry": entry.id,
            "selectors": matched,
            "evidence_hash": identity.evidence_hash,
        }
        token, expires_at = self._own.issue(agent.name, origin, ttl=self._ttl, audience=audience)
        spiffe_id = self._own.spiffe_id(agent.name)
        self._audit.record(
            "workload.svid_issued",
            f"unix:pid:{peer.pid}",
            {
                "spiffe_id": spiffe_id,
                "audience": audience,
                "expires_at": expires_at,
                "entry": entry.id,
                "selectors": matched,
                "caller": caller,
                "evidence_hash": identity.evidence_hash,
                "pidfd": peer.pidfd_source,
            },
            agent=agent.name,
        )
        return {
            "spiffe_id": spiffe_id,
            "svid": token,
            "expires_at": expires_at,
            "audience": audience,
            "agent": agent.name,
            "entry": entry.id,
        }
