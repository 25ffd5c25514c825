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
class ModeSetting:
    """An enforcement-mode override for an agent or a risk tier."""

    kind: str  # "agent" | "risk_tier"
    value: str
    mode: EnforcementMode
    updated_at: float = 0.0
    updated_by: str = ""


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
