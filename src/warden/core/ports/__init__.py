"""Protocols the core and services need from the outside world: one small port per aggregate.

The system of record is split by aggregate (ADR 0150), each port named for what it stores:

    HumanStore       owners                      AgentStore        agents
    TaskStore        tasks and credentials       AttestationStore  entries, join tokens
    ProofStore       DPoP proof replay           LeaseStore        downstream leases
    KeyStore         sealed signing keys         ChangeFeed        replicas, change log
    OperatorStore    operators                   ApprovalStore     approvals and grants
    BehaviourStore   findings, baselines         ModeStore         enforcement modes
    PolicyStore      policy bundles              AuditLog          chain, checkpoints, cursors
    GovernanceStore  governance, certification   IntegrityStore    manifests, tool pins
    SignalStore      SSF streams and outbox (defined in ``warden.core.signals``)

A service takes the port(s) it uses; ``Store`` is their union plus the store's own lifecycle,
for the composition root. Implementation: ``warden.storage.sql.SQLStore`` (SQLite and
PostgreSQL), split the same way (one module per aggregate under ``warden.storage.sql``);
``warden.storage.memory.MemoryStore`` implements some of the ports (see its docstring), held to
the same conformance suites (``tests/conformance/storage``).

Every method is one transaction; methods that change several rows do so atomically. Errors:
``NotFoundError`` (fetch_* on a missing row), ``ConflictError`` (unique violations),
``StorageError`` (anything else from the database, with the driver error as ``__cause__``).
"""

from __future__ import annotations

from typing import Protocol

from warden.core.ports.agents import AgentStore, HumanStore
from warden.core.ports.approvals import ApprovalStore
from warden.core.ports.attestation import AttestationStore
from warden.core.ports.audit import AuditLog
from warden.core.ports.behaviour import BehaviourStore, ModeStore
from warden.core.ports.changes import ChangeFeed
from warden.core.ports.governance import GovernanceStore
from warden.core.ports.integrity import IntegrityStore
from warden.core.ports.keys import KeyStore
from warden.core.ports.leases import LeaseStore
from warden.core.ports.operators import OperatorStore
from warden.core.ports.policies import PolicyStore
from warden.core.ports.proofs import ProofStore
from warden.core.ports.tasks import TaskStore
from warden.core.signals import SignalStore

__all__ = [
    "AgentStore",
    "ApprovalStore",
    "AttestationStore",
    "AuditLog",
    "BehaviourStore",
    "ChangeFeed",
    "GovernanceStore",
    "HumanStore",
    "IntegrityStore",
    "KeyStore",
    "LeaseStore",
    "ModeStore",
    "OperatorStore",
    "PolicyStore",
    "ProofStore",
    "SignalStore",
    "Store",
    "TaskStore",
]


class Store(
    HumanStore,
    AgentStore,
    TaskStore,
    AttestationStore,
    ProofStore,
    LeaseStore,
    KeyStore,
    ChangeFeed,
    OperatorStore,
    ApprovalStore,
    BehaviourStore,
    ModeStore,
    PolicyStore,
    AuditLog,
    GovernanceStore,
    IntegrityStore,
    SignalStore,
    Protocol,
):
    """Every port, plus the store's own lifecycle: what the composition root opens and wires."""

    def migrate(self) -> None:
        """Bring the schema to the newest revision (idempotent)."""
        ...

    def close(self) -> None: ...
