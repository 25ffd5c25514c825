"""Services run on the in-memory store (ADR 0150): no SQL, the port each service names is enough."""

from __future__ import annotations

from typing import Any, cast

import pytest

from warden.core.clock import FrozenClock
from warden.core.model import Agent, EnforcementMode, OperatorRole, RiskTier
from warden.errors import ConflictError, NotFoundError
from warden.service.auditing import Auditor
from warden.service.modes import ModeService
from warden.service.operators import OperatorService, hash_token
from warden.storage.memory import MemoryStore

T0 = 1_800_000_000.0


class RecordingAuditor:
    """Stands in for ``Auditor``: keeps what would have been written."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, dict[str, Any]]] = []

    def record(self, type: str, actor: str, data: dict[str, Any] | None = None, **_: Any) -> None:
        self.records.append((type, actor, data or {}))


def agent(name: str, tier: RiskTier = RiskTier.MEDIUM) -> Agent:
    return Agent(
        name=name,
        spiffe_id=f"spiffe://example.org/agents/{name}",
        owner="alice@example.org",
        purpose="reads tickets",
        risk_tier=tier,
        entitlements=(),
    )


def test_modes_persist_in_the_memory_store_and_reload() -> None:
    store = MemoryStore()
    audit = RecordingAuditor()
    modes = ModeService(store, cast(Auditor, audit), FrozenClock(T0), {})
    modes.set("agent", "bot", "monitor", "op-1")
    modes.set("risk_tier", "high", "monitor", "op-1")
    assert modes.mode_for(agent("bot")) == (EnforcementMode.MONITOR, "agent")
    fresh = ModeService(store, cast(Auditor, audit), FrozenClock(T0), {})
    fresh.load()
    assert fresh.mode_for(agent("other", RiskTier.HIGH)) == (EnforcementMode.MONITOR, "risk_tier")
    fresh.clear("agent", "bot", "op-2")
    assert [(s.kind, s.value) for s in store.list_modes()] == [("risk_tier", "high")]
    with pytest.raises(NotFoundError):
        fresh.clear("agent", "bot", "op-2")
    assert [r[0] for r in audit.records] == ["policy.mode_changed"] * 3


def test_operators_are_created_and_found_by_token_on_the_memory_store() -> None:
    store = MemoryStore()
    audit = RecordingAuditor()
    ops = OperatorService(store, cast(Auditor, audit), FrozenClock(T0))
    op, token = ops.create("alice", OperatorRole.APPROVER, "root", human="alice@example.org")
    assert store.fetch_operator_by_token_hash(hash_token(token)) == op
    with pytest.raises(ConflictError):
        ops.create("alice", OperatorRole.ADMIN, "root")
    assert audit.records[0][0] == "operator.created"
