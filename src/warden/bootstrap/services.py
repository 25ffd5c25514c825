"""``Services``: every component of one Warden process, built once and frozen (ADR 0151).

The fields are what the API, the CLI, the MCP proxies and the tests reach for; the order is the
order ``build_services`` makes them in (each needs only fields above it). Nothing is assigned
after construction: a field cannot be rebound, and no component is handed another one late.
"""

from __future__ import annotations

from dataclasses import dataclass

from warden.attestation.base import AttestorRegistry
from warden.audit.writer import AuditWriter
from warden.authz.pdp import PolicyDecisionPoint
from warden.behaviour import BehaviourMonitor, SharedCounters
from warden.core.clock import Clock
from warden.core.ports import Store
from warden.evidence.controls import Thresholds
from warden.service.agents import AgentService
from warden.service.approvals import ApprovalService
from warden.service.attestation import Attestation
from warden.service.attribution import AttributionService
from warden.service.auditing import Auditor
from warden.service.behaviour import BehaviourService
from warden.service.certification import CertificationService
from warden.service.checkpoints import CheckpointService
from warden.service.credentials import CredentialService
from warden.service.decisions import DecisionService
from warden.service.entries import EntryService
from warden.service.events import EventFeed
from warden.service.explain import DecisionExplainer
from warden.service.export import ExportService
from warden.service.freshness import Freshness
from warden.service.introspection import IntrospectionService
from warden.service.join_tokens import JoinTokenService
from warden.service.keys import KeyService
from warden.service.leases import LeaseService
from warden.service.liveness import Liveness
from warden.service.manifests import ManifestService
from warden.service.modes import ModeService
from warden.service.notifications import Notifier
from warden.service.operators import OperatorService
from warden.service.outage import OutageService
from warden.service.ownership import OwnershipService
from warden.service.pins import ToolPinService
from warden.service.policy_activation import PolicyPublisher, PolicyStatus
from warden.service.policy_sync import PolicySync
from warden.service.refusals import RefusalLog
from warden.service.replication import Announcer, Replication
from warden.service.signals import SignalService
from warden.service.state import HotState
from warden.service.tasks import TaskService
from warden.service.workload import WorkloadService
from warden.telemetry import Tracing
from warden.tokens.dpop import DPoPVerifier
from warden.tokens.issuer import TaskCredentialIssuer
from warden.tokens.sealed import SealedKeyManager
from warden.tokens.verifier import TaskCredentialVerifier
from warden.webhooks import WebhookDispatcher


@dataclass(frozen=True, eq=False, kw_only=True)
class Services:
    # storage, audit, telemetry
    clock: Clock
    store: Store
    counters: SharedCounters | None
    feed: EventFeed
    tracing: Tracing
    writer: AuditWriter
    auditor: Auditor
    # keys and credentials
    keys: SealedKeyManager
    issuer: TaskCredentialIssuer
    verifier: TaskCredentialVerifier
    # replicas: the sending half first, so everything that announces gets it at construction
    announcer: Announcer
    freshness: Freshness
    state: HotState
    # identity, modes, operators
    entries: EntryService
    join_tokens: JoinTokenService
    attestation: Attestation
    attestors: AttestorRegistry
    workload: WorkloadService
    dpop: DPoPVerifier
    pdp: PolicyDecisionPoint
    modes: ModeService
    operators: OperatorService
    refusals: RefusalLog
    manifests: ManifestService
    pins: ToolPinService
    # tasks, agents, leases, keys
    leases: LeaseService
    liveness: Liveness
    credentials: CredentialService
    tasks: TaskService
    agents: AgentService
    key_service: KeyService
    introspection: IntrospectionService
    # approvals, behaviour, notifications
    webhooks: WebhookDispatcher
    notifier: Notifier
    approvals: ApprovalService
    monitor: BehaviourMonitor
    behaviour: BehaviourService
    outage: OutageService
    # the decision path and its policies
    decisions: DecisionService
    policy_status: PolicyStatus
    policy_sync: PolicySync
    policies: PolicyPublisher
    # governance (issue 7)
    ownership: OwnershipService
    certification: CertificationService
    checkpoints: CheckpointService
    export: ExportService
    attribution: AttributionService
    explainer: DecisionExplainer
    thresholds: Thresholds
    signals: SignalService
    # the receiving half of replication, last: its handlers reach the services above
    replication: Replication
