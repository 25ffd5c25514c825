"""``SQLStore``: every port of ``warden.core.ports.Store`` over SQLAlchemy 2 Core.

One mixin per aggregate (``agents``, ``tasks``, ``attestation``, ``proofs``, ``leases``, ``keys``,
``feed``, ``operators``, ``approvals``, ``behaviour``, ``policies``, ``audit``, ``governance``,
``integrity``, ``signals``), each over the shared ``SQLBase`` (``engine.py``: the engine, one
transaction per method, translated driver errors). See ``engine.py`` for the SQLite and
PostgreSQL specifics.
"""

from __future__ import annotations

from warden.storage.sql.agents import AgentSQL
from warden.storage.sql.approvals import ApprovalSQL
from warden.storage.sql.attestation import AttestationSQL
from warden.storage.sql.audit import AuditSQL
from warden.storage.sql.behaviour import BehaviourSQL
from warden.storage.sql.engine import AUDIT_LOCK_KEY, MIGRATE_LOCK_KEY, SQLBase, normalize_url
from warden.storage.sql.feed import ChangeFeedSQL
from warden.storage.sql.governance import GovernanceSQL
from warden.storage.sql.integrity import IntegritySQL
from warden.storage.sql.keys import KeySQL
from warden.storage.sql.leases import LeaseSQL
from warden.storage.sql.operators import OperatorSQL
from warden.storage.sql.policies import PolicySQL
from warden.storage.sql.proofs import ProofSQL
from warden.storage.sql.signals import SignalsSQL
from warden.storage.sql.tasks import TaskSQL

__all__ = ["AUDIT_LOCK_KEY", "MIGRATE_LOCK_KEY", "SQLStore", "normalize_url", "open_store"]


class SQLStore(
    AgentSQL,
    TaskSQL,
    AttestationSQL,
    ProofSQL,
    LeaseSQL,
    KeySQL,
    ChangeFeedSQL,
    OperatorSQL,
    ApprovalSQL,
    BehaviourSQL,
    PolicySQL,
    AuditSQL,
    GovernanceSQL,
    IntegritySQL,
    SignalsSQL,
    SQLBase,
):
    """The system of record on SQLite or PostgreSQL. Create with ``open_store(url)``."""

    def __repr__(self) -> str:
        return f"SQLStore({self._url.render_as_string(hide_password=True)!r})"


def open_store(url: str) -> SQLStore:
    """A store for ``url`` (``sqlite:///path``, ``postgresql://...``). Call ``migrate()`` next."""
    return SQLStore(url)
