"""Conformance of ApprovalStore, BehaviourStore, ModeStore, OperatorStore and ProofStore: every
implementation (memory, SQLite, PostgreSQL — see conftest.py) passes the same assertions."""

from __future__ import annotations

from dataclasses import replace

import pytest

from warden.core.model import (
    ApprovalRequest,
    ApprovalStatus,
    Baseline,
    EnforcementMode,
    Finding,
    ModeSetting,
    Operator,
    OperatorRole,
    Severity,
)
from warden.core.ports import ApprovalStore, BehaviourStore, ModeStore, OperatorStore, ProofStore
from warden.errors import ApprovalClosedError, ConflictError, InvalidParameterError, NotFoundError

pytestmark = pytest.mark.approvals

T0 = 1_800_000_000.25


def request(rid: str, *, created_at: float = T0, **kw: object) -> ApprovalRequest:
    fields: dict[str, object] = {
        "id": rid,
        "status": ApprovalStatus.PENDING,
        "digest": "d" * 64,
        "agent": "bot",
        "owner": "alice@example.com",
        "task_id": "task_1",
        "action": "tickets.delete",
        "resource_type": "Tool",
        "resource_id": "tickets.delete",
        "arguments": {"ticket": "T-1", "nested": [1, {"a": None}]},
        "policies": ("delete-needs-owner",),
        "chain": ("owner", "group:security"),
        "level": 1,
        "escalate_after": 600.0,
        "escalate_at": created_at + 600,
        "created_at": created_at,
        "updated_at": created_at,
        "on_behalf_of": "dave@example.com",
        "separation_of_duties": True,
        "evaluation_id": "dec_1",
    }
    fields.update(kw)
    return ApprovalRequest(**fields)  # type: ignore[arg-type]


def test_approvals_round_trip_and_compare_and_set(store: ApprovalStore) -> None:
    req = request("apr_1")
    store.create_approval(req)
    assert store.fetch_approval("apr_1") == req
    with pytest.raises(ConflictError):
        store.create_approval(req)
    with pytest.raises(NotFoundError):
        store.fetch_approval("apr_missing")
    approved = replace(
        req,
        status=ApprovalStatus.APPROVED,
        decided_by="alice@example.com",
        decided_at=T0 + 5,
        decision_auth={"method": "operator_token", "operator": "op_1"},
        seen={"digest": req.digest},
        grant_expires_at=T0 + 300,
        updated_at=T0 + 5,
    )
    store.update_approval(approved, expect_status=ApprovalStatus.PENDING)
    assert store.fetch_approval("apr_1") == approved
    # a second decision loses the race
    with pytest.raises(ApprovalClosedError):
        store.update_approval(
            replace(req, status=ApprovalStatus.DENIED), expect_status=ApprovalStatus.PENDING
        )


def test_a_grant_is_spent_once_and_not_after_it_expires(store: ApprovalStore) -> None:
    store.create_approval(
        request("apr_1", status=ApprovalStatus.APPROVED, grant_expires_at=T0 + 300)
    )
    store.create_approval(
        request("apr_2", status=ApprovalStatus.APPROVED, grant_expires_at=T0 + 300)
    )
    store.create_approval(request("apr_3"))
    assert store.use_approval("apr_1", used_at=T0 + 10, decision_id="dec_9") is True
    assert store.use_approval("apr_1", used_at=T0 + 11, decision_id="dec_10") is False
    assert store.fetch_approval("apr_1").used_by_decision == "dec_9"
    assert store.use_approval("apr_2", used_at=T0 + 301, decision_id="dec_11") is False
    assert store.use_approval("apr_3", used_at=T0 + 1, decision_id="dec_12") is False


def test_listing_approvals(store: ApprovalStore) -> None:
    for i in range(5):
        store.create_approval(
            request(f"apr_{i}", created_at=T0 + i, agent="bot" if i % 2 else "other")
        )
    page = store.list_approvals(limit=2)
    assert [a.id for a in page] == ["apr_4", "apr_3"]
    assert [a.id for a in store.list_approvals(after="apr_3", limit=2)] == ["apr_2", "apr_1"]
    assert [a.id for a in store.list_approvals(agent="bot")] == ["apr_3", "apr_1"]
    assert store.list_approvals(status=ApprovalStatus.APPROVED) == []
    assert [a.id for a in store.list_approvals(updated_since=T0 + 3)] == ["apr_3", "apr_4"]
    with pytest.raises(InvalidParameterError):
        store.list_approvals(after="apr_nope")


def test_findings(store: BehaviourStore) -> None:
    items = [
        Finding(
            id=f"fnd_{i}",
            agent="bot" if i < 3 else "other",
            detector="rate_spike",
            severity=Severity.HIGH if i % 2 else Severity.LOW,
            summary=f"finding {i}",
            created_at=T0 + i,
            facts={"calls": i},
            task_id="task_1",
            decision_id=f"dec_{i}",
            score=i * 3,
            actions=("record", "notify"),
        )
        for i in range(4)
    ]
    store.create_findings(items)
    assert store.list_findings() == list(reversed(items))
    assert [f.id for f in store.list_findings(agent="bot", limit=2)] == ["fnd_2", "fnd_1"]
    assert [f.id for f in store.list_findings(after="fnd_1")] == ["fnd_0"]
    assert [f.id for f in store.list_findings(severity="high")] == ["fnd_3", "fnd_1"]
    assert [f.id for f in store.list_findings(since=T0 + 2)] == ["fnd_3", "fnd_2"]
    store.create_findings([])


def test_baselines_upsert(store: BehaviourStore) -> None:
    store.put_baseline(Baseline("bot", {"tools": ["a"]}, {}, T0))
    store.put_baseline(Baseline("bot", {"tools": ["a"]}, {"tools": ["b"], "windows": 2}, T0 + 1))
    store.put_baseline(Baseline("alpha", {}, {}, T0))
    assert store.list_baselines() == [
        Baseline("alpha", {}, {}, T0),
        Baseline("bot", {"tools": ["a"]}, {"tools": ["b"], "windows": 2}, T0 + 1),
    ]


def test_operators_keep_their_person(store: OperatorStore) -> None:
    op = Operator("op_1", "alice", OperatorRole.APPROVER, "h" * 64, T0, human="alice@example.com")
    store.create_operator(op)
    assert store.fetch_operator_by_token_hash("h" * 64) == op


def test_operators(store: OperatorStore) -> None:
    admin = Operator(id="op-1", name="root", role=OperatorRole.ADMIN, token_hash="a" * 64)
    auditor = Operator(
        id="op-2", name="eve", role=OperatorRole.AUDITOR, token_hash="b" * 64, disabled=True
    )
    store.create_operator(admin)
    store.create_operator(auditor)
    assert store.fetch_operator_by_token_hash("a" * 64) == admin
    assert store.fetch_operator_by_token_hash("b" * 64) == auditor
    assert store.list_operators() == [auditor, admin]  # by name
    with pytest.raises(ConflictError):
        store.create_operator(replace(admin, token_hash="c" * 64))
    with pytest.raises(ConflictError):
        store.create_operator(replace(admin, id="op-3"))
    with pytest.raises(NotFoundError) as info:
        store.fetch_operator_by_token_hash("d" * 64)
    assert "d" * 64 not in str(info.value)


def test_modes_upsert_list_delete(store: ModeStore) -> None:
    a = ModeSetting("agent", "bot", EnforcementMode.MONITOR, updated_at=T0, updated_by="op-1")
    r = ModeSetting("risk_tier", "low", EnforcementMode.ENFORCE, updated_at=T0)
    store.set_mode(a)
    store.set_mode(r)
    assert store.list_modes() == [a, r]
    a2 = replace(a, mode=EnforcementMode.ENFORCE, updated_at=T0 + 1, updated_by="op-2")
    store.set_mode(a2)
    assert store.list_modes() == [a2, r]
    store.delete_mode("agent", "bot")
    assert store.list_modes() == [r]
    with pytest.raises(NotFoundError):
        store.delete_mode("agent", "bot")


def test_proof_replay_is_detected_until_expiry(store: ProofStore) -> None:
    assert store.remember_proof("k1", expires_at=T0 + 60, now=T0) is True
    assert store.remember_proof("k1", expires_at=T0 + 70, now=T0 + 30) is False
    assert store.remember_proof("k1", expires_at=T0 + 200, now=T0 + 61) is True  # expired: reuse
    assert store.prune_proofs(now=T0 + 300) == 1
