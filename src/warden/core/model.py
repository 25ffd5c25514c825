"""Domain records. Frozen dataclasses; times are epoch seconds (float) in UTC."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class AgentStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    DECOMMISSIONED = "decommissioned"


class RiskTier(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class HumanStatus(StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"


class TaskStatus(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
    FAILED = "failed"
    EXPIRED = "expired"
    REVOKED = "revoked"


class OperatorRole(StrEnum):
    ADMIN = "admin"
    APPROVER = "approver"
    AUDITOR = "auditor"
    PEP = "pep"  # a policy enforcement point: may ask the PDP, nothing else (issue 10)


class EnforcementMode(StrEnum):
    ENFORCE = "enforce"
    MONITOR = "monitor"


@dataclass(frozen=True, slots=True)
class Agent:
    name: str
    spiffe_id: str
    owner: str
    purpose: str
    risk_tier: RiskTier
    entitlements: tuple[str, ...]
    status: AgentStatus = AgentStatus.ACTIVE
    groups: tuple[str, ...] = ()
    created_at: float = 0.0
    updated_at: float = 0.0

    @property
    def trust_domain(self) -> str:
        return self.spiffe_id.removeprefix("spiffe://").split("/", 1)[0]


@dataclass(frozen=True, slots=True)
class Human:
    id: str  # usually an email address
    status: HumanStatus = HumanStatus.ACTIVE
    display_name: str = ""
    created_at: float = 0.0


@dataclass(frozen=True, slots=True)
class Task:
    id: str
    agent_name: str
    spiffe_id: str
    purpose: str
    category: str
    requested_scope: tuple[str, ...]
    granted_scope: tuple[str, ...]
    audience: tuple[str, ...]
    created_at: float
    expires_at: float
    status: TaskStatus = TaskStatus.ACTIVE
    parent_id: str | None = None
    on_behalf_of: str | None = None
    ended_at: float | None = None
    end_reason: str | None = None
    attestation: dict[str, Any] = field(default_factory=dict)
    # The delegation chain: the SPIFFE IDs of the agents from the root task's agent down to this
    # task's own agent (RFC 8693 §4.1 ``act`` nesting, outermost last). Empty means "a root
    # task": it is filled in as ``(spiffe_id,)``.
    chain: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.chain:
            object.__setattr__(self, "chain", (self.spiffe_id,))

    @property
    def depth(self) -> int:
        """How many delegations separate this task from its root task (0 for a root task)."""
        return len(self.chain) - 1


@dataclass(frozen=True, slots=True)
class Credential:
    """A task credential as recorded (never the token itself)."""

    jti: str
    task_id: str
    agent_name: str
    issued_at: float
    expires_at: float
    kid: str
    revoked_at: float | None = None


@dataclass(frozen=True, slots=True)
class Operator:
    id: str
    name: str
    role: OperatorRole
    token_hash: str  # sha256 hex of the bearer token; the token itself is never stored
    created_at: float = 0.0
    disabled: bool = False
    human: str | None = None  # the person behind the account (an owner's id), for approvals
    expires_at: float | None = None  # the token's expiry (None: from before tokens expired)


@dataclass(frozen=True, slots=True)
class AuditDraft:
    """An audit event before it has a place in the chain."""

    ts: float
    type: str
    actor: str
    data: dict[str, Any]
    agent: str | None = None
    task_id: str | None = None
    decision_id: str | None = None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    seq: int
    ts: float
    type: str
    actor: str
    data: dict[str, Any]
    agent: str | None
    task_id: str | None
    decision_id: str | None
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class PolicyPointer:
    """The policy revision every replica must serve (ADR 0120)."""

    revision: str
    activated_at: float
    activated_by: str


@dataclass(frozen=True, slots=True)
class ModeSetting:
    """An enforcement-mode override for an agent or a risk tier."""

    kind: str  # "agent" | "risk_tier"
    value: str
    mode: EnforcementMode
    updated_at: float = 0.0
    updated_by: str = ""


class ApprovalStatus(StrEnum):
    """AuthZEN Access Request & Approval task statuses (a grant's use is ``used_at``)."""

    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """A human decision asked for on one exact pending action (bound by ``digest``).

    ``chain`` is the escalation path (``"owner"``, ``"group:<name>"``, ``"approvers"``);
    ``level`` is the 1-based step now waiting. Once approved, the grant is valid until
    ``grant_expires_at`` and is spent by one allowed decision (``used_at``).
    """

    id: str
    status: ApprovalStatus
    digest: str
    agent: str
    owner: str
    task_id: str
    action: str
    resource_type: str
    resource_id: str
    arguments: dict[str, Any]  # masked, for display only; the digest covers the real ones
    policies: tuple[str, ...]
    chain: tuple[str, ...]
    level: int
    escalate_after: float
    escalate_at: float
    created_at: float
    updated_at: float
    source: str = "policy"  # "policy" (an @approval forbid) or "behaviour" (step-up)
    on_behalf_of: str | None = None
    separation_of_duties: bool = False
    evaluation_id: str | None = None  # the decision that opened it
    coalesced: int = 0  # identical requests folded into this one
    decided_by: str | None = None
    decided_at: float | None = None
    decision_reason: str = ""
    decision_auth: dict[str, Any] = field(default_factory=dict)
    seen: dict[str, Any] = field(default_factory=dict)  # what the approver was shown
    grant_expires_at: float | None = None
    used_at: float | None = None
    used_by_decision: str | None = None


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class Finding:
    """Something an agent did that is unlike its baseline, explained in one sentence."""

    id: str
    agent: str
    detector: str
    severity: Severity
    summary: str
    created_at: float
    facts: dict[str, Any] = field(default_factory=dict)
    task_id: str | None = None
    decision_id: str | None = None
    score: int = 0  # the agent's behaviour score after this finding
    actions: tuple[str, ...] = ()  # what escalation did: notify, step_up, suspend


@dataclass(frozen=True, slots=True)
class Baseline:
    """An agent's expected behaviour: declared at registration and learned over windows."""

    agent: str
    declared: dict[str, Any] = field(default_factory=dict)
    learned: dict[str, Any] = field(default_factory=dict)
    updated_at: float = 0.0


@dataclass(frozen=True, slots=True)
class RegistrationEntry:
    """Selectors that, all together, identify one agent's workload (see ``core.selectors``)."""

    id: str
    agent_name: str
    selectors: tuple[str, ...]  # sorted, unique
    created_at: float = 0.0
    created_by: str = ""
    description: str = ""


@dataclass(frozen=True, slots=True)
class JoinToken:
    """A one-time bootstrap token for one agent. Only the SHA-256 of its secret is kept."""

    id: str
    agent_name: str
    secret_hash: str
    created_at: float
    expires_at: float
    created_by: str = ""
    used_at: float | None = None


class LeaseKind(StrEnum):
    POSTGRES = "postgres"  # a temporary login role on a configured PostgreSQL target
    JWT = "jwt"  # an audience-bound token for one named downstream service


class LeaseState(StrEnum):
    CREATING = "creating"  # recorded, the downstream secret may or may not exist yet
    ACTIVE = "active"
    REVOKING = "revoking"  # revocation started and has not been confirmed yet
    REVOKED = "revoked"  # confirmed gone downstream
    FAILED = "failed"  # creation failed and nothing is left downstream


@dataclass(frozen=True, slots=True)
class Lease:
    """A downstream secret minted for a task (never the secret itself)."""

    id: str
    task_id: str
    agent_name: str
    kind: LeaseKind
    target: str  # the PostgreSQL target or the downstream service
    principal: str  # the role name (postgres) or the token's jti (jwt)
    created_at: float
    expires_at: float
    state: LeaseState = LeaseState.CREATING
    kid: str | None = None  # jwt: the signing key
    updated_at: float = 0.0
    revoked_at: float | None = None
    attempts: int = 0
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A signing key as the database holds it: the private half only sealed (AES-GCM)."""

    kid: str
    generation: int
    algorithm: str
    public_jwk: dict[str, Any]
    sealed_private: str | None  # None once the key is retired (the private half is destroyed)
    created_at: float
    superseded_at: float | None = None  # when a newer key started signing
    retired_at: float | None = None  # when it left the JWKS


@dataclass(frozen=True, slots=True)
class Replica:
    """One running Warden process, as it announces itself (heartbeats)."""

    id: str
    url: str
    started_at: float
    last_seen: float


@dataclass(frozen=True, slots=True)
class DenyChanges:
    """Changes toward deny recorded since some time (the freshness poll, ADR 0092): revoked
    credentials (jti -> expiry) and agents no longer active (name -> status)."""

    revoked: dict[str, float]
    agents: dict[str, str]


@dataclass(frozen=True, slots=True)
class Change:
    """A change one replica announces to the others (see ``service.replication``)."""

    kind: str
    data: dict[str, Any]
    origin: str
