"""The GovernanceStore half of the Store contract, on SQLite and PostgreSQL (see conftest.py)."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from warden.core.governance import (
    AgentGovernance,
    AuditQuery,
    Campaign,
    CampaignStatus,
    Checkpoint,
    FlagReason,
    Review,
    ReviewStatus,
    TimeoutAction,
)
from warden.core.model import AuditDraft, Human, HumanStatus
from warden.errors import ConflictError, NotFoundError
from warden.storage.sql import SQLStore

from .test_store import T0, agent, cred, task

pytestmark = pytest.mark.governance


def test_humans_page_by_id_and_filter_by_status(store: SQLStore) -> None:
    for name in ("carol", "alice", "bob"):
        store.upsert_human(Human(id=f"{name}@example.org", created_at=T0))
    store.update_human(Human(id="bob@example.org", status=HumanStatus.INACTIVE, created_at=T0))
    assert [h.id for h in store.list_humans(limit=2)] == ["alice@example.org", "bob@example.org"]
    assert [h.id for h in store.list_humans(after="bob@example.org")] == ["carol@example.org"]
    inactive = store.list_humans(status=HumanStatus.INACTIVE)
    assert [h.id for h in inactive] == ["bob@example.org"]


def test_governance_defaults_then_round_trips_with_co_owners(store: SQLStore) -> None:
    store.create_agent(agent("bot", owner="alice@example.org"))
    assert store.fetch_governance("bot") == AgentGovernance("bot")
    gov = AgentGovernance(
        "bot",
        co_owners=("carol@example.org", "bob@example.org"),
        end_date=T0 + 10,
        orphaned_at=T0 + 1,
        flagged_at=T0 + 2,
        flag_reason=FlagReason.END_DATE,
        last_certified_at=T0 + 3,
    )
    store.put_governance(gov)
    assert store.fetch_governance("bot") == gov
    store.put_governance(replace(gov, co_owners=("bob@example.org",), flag_reason=None))
    assert store.fetch_governance("bot").co_owners == ("bob@example.org",)
    assert store.fetch_governance("bot").flag_reason is None
    store.create_agent(agent("other", owner="bob@example.org"))
    assert store.agents_owned_by("bob@example.org") == ["bot", "other"]
    assert store.agents_owned_by("alice@example.org") == ["bot"]
    assert store.agents_owned_by("carol@example.org") == []


def test_last_activity_is_the_newest_task_start(store: SQLStore) -> None:
    store.create_task(task("t1", "bot", created_at=T0), cred("j1", "t1"))
    store.create_task(task("t2", "bot", created_at=T0 + 50), cred("j2", "t2"))
    store.create_task(task("t3", "other", created_at=T0 + 5), cred("j3", "t3"))
    assert store.last_activity() == {"bot": T0 + 50, "other": T0 + 5}


def _campaign(cid: str, **kw: object) -> Campaign:
    fields: dict[str, object] = {
        "id": cid,
        "started_at": T0,
        "started_by": "operator:admin",
        "period_start": T0 - 90 * 86400,
        "deadline": T0 + 14 * 86400,
        "on_timeout": TimeoutAction.REDUCE,
        "every": 90 * 86400.0,
    }
    fields.update(kw)
    return Campaign(**fields)  # type: ignore[arg-type]


def _review(rid: str, cid: str, agent_name: str) -> Review:
    return Review(
        id=rid,
        campaign_id=cid,
        agent_name=agent_name,
        owner="alice@example.org",
        entitlements=("a", "b"),
        used=("a",),
        deadline=T0 + 14 * 86400,
    )


def test_one_open_campaign_at_a_time(store: SQLStore) -> None:
    store.create_campaign(_campaign("c1"), [_review("r1", "c1", "bot"), _review("r2", "c1", "x")])
    with pytest.raises(ConflictError, match="already open"):
        store.create_campaign(_campaign("c2"), [])
    closed = store.close_campaign("c1", closed_at=T0 + 5)
    assert closed.status is CampaignStatus.CLOSED and closed.closed_at == T0 + 5
    with pytest.raises(ConflictError):
        store.close_campaign("c1", closed_at=T0 + 6)
    store.create_campaign(_campaign("c2", started_at=T0 + 10), [])
    assert [c.id for c in store.list_campaigns()] == ["c2", "c1"]
    assert store.fetch_campaign("c1") == closed
    with pytest.raises(NotFoundError):
        store.fetch_campaign("nope")


def test_concurrent_campaign_starts_open_exactly_one(store: SQLStore) -> None:
    wins: list[str] = []
    errors: list[BaseException] = []

    def start(cid: str) -> None:
        try:
            store.create_campaign(_campaign(cid), [])
            wins.append(cid)
        except ConflictError:
            pass
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(f"c{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(wins) == 1


def test_review_decision_is_compare_and_set(store: SQLStore) -> None:
    store.create_campaign(_campaign("c1"), [_review("r1", "c1", "bot")])
    review = store.fetch_review("r1")
    assert review.status is ReviewStatus.PENDING and review.result is None
    decided = replace(
        review,
        status=ReviewStatus.REDUCED,
        decided_at=T0 + 1,
        decided_by="alice@example.org",
        result=("a",),
    )
    store.decide_review(decided)
    assert store.fetch_review("r1") == decided
    with pytest.raises(ConflictError, match="already decided"):
        store.decide_review(replace(decided, status=ReviewStatus.KEPT))
    with pytest.raises(NotFoundError):
        store.decide_review(replace(decided, id="nope"))
    assert store.list_reviews(status=ReviewStatus.PENDING) == []
    assert store.list_reviews(campaign_id="c1", agent="bot") == [decided]
    assert store.list_reviews(due_before=T0) == []


def test_checkpoints_and_export_cursors(store: SQLStore) -> None:
    assert store.latest_checkpoint() is None
    for seq in (3, 1, 7):
        store.create_checkpoint(Checkpoint(seq, f"{seq:064x}", T0 + seq, "kid", f"jws{seq}"))
    with pytest.raises(ConflictError):
        store.create_checkpoint(Checkpoint(3, "0" * 64, T0, "kid", "x"))
    assert [c.seq for c in store.list_checkpoints()] == [1, 3, 7]
    assert [c.seq for c in store.list_checkpoints(after_seq=1, limit=1)] == [3]
    assert [c.seq for c in store.iter_checkpoints(batch=2)] == [1, 3, 7]
    latest = store.latest_checkpoint()
    assert latest is not None and latest.seq == 7

    assert store.fetch_export_cursor("siem") == 0
    store.advance_export_cursor("siem", expected=0, to=10, at=T0)
    store.advance_export_cursor("siem", expected=10, to=25, at=T0)
    with pytest.raises(ConflictError, match="another exporter"):
        store.advance_export_cursor("siem", expected=10, to=30, at=T0)
    with pytest.raises(ConflictError):
        store.advance_export_cursor("siem", expected=0, to=30, at=T0)
    assert store.fetch_export_cursor("siem") == 25


def _decision(
    n: int, agent_name: str, task_id: str, action: str, decision: str, reasons: list[str]
) -> AuditDraft:
    return AuditDraft(
        ts=T0 + n,
        type="authz.decision",
        actor=f"spiffe://example.org/agents/{agent_name}",
        data={"decision": decision, "action": action, "reasons": reasons},
        agent=agent_name,
        task_id=task_id,
        decision_id=f"dec-{n}",
    )


def test_search_audit_attribution_filters(store: SQLStore) -> None:
    store.create_agent(agent("bot", owner="alice@example.org"))
    store.create_agent(agent("helper", owner="bob@example.org", spiffe_id="spiffe://e.org/h"))
    store.put_governance(AgentGovernance("helper", co_owners=("alice@example.org",)))
    store.create_agent(agent("stranger", owner="bob@example.org", spiffe_id="spiffe://e.org/s"))
    store.create_task(task("root", "bot", on_behalf_of="dana@example.org"), cred("j1", "root"))
    store.create_task(
        task("child", "helper", parent_id="root", created_at=T0 + 1), cred("j2", "child")
    )
    store.create_task(
        task("grandchild", "helper", parent_id="child", created_at=T0 + 2), cred("j3", "grandchild")
    )
    store.create_task(task("unrelated", "stranger"), cred("j4", "unrelated"))
    store.append_audit(
        [
            _decision(1, "bot", "root", "tickets.read", "allow", ["read-tickets"]),
            _decision(2, "helper", "child", "email.send", "deny", ["no-external-email"]),
            _decision(3, "helper", "grandchild", "tickets.read", "allow", ["read-tickets"]),
            _decision(4, "stranger", "unrelated", "tickets.read", "deny", []),
            AuditDraft(ts=T0 + 5, type="task.completed", actor="x", data={}, task_id="root"),
        ]
    )

    def seqs(**kw: object) -> list[int]:
        return [r.seq for r in store.search_audit(AuditQuery(**kw))]  # type: ignore[arg-type]

    assert seqs() == [1, 2, 3, 4, 5]
    assert seqs(owner="alice@example.org") == [1, 2, 3]  # primary and co-owned agents
    assert seqs(owner="bob@example.org") == [2, 3, 4]
    assert seqs(task_id="root") == [1, 5]
    assert seqs(task_id="root", subtree=True) == [1, 2, 3, 5]
    assert seqs(task_id="child", subtree=True) == [2, 3]
    assert seqs(on_behalf_of="dana@example.org") == [1, 5]
    assert seqs(action="tickets.read") == [1, 3, 4]
    assert seqs(decision="deny") == [2, 4]
    assert seqs(policy="read-tickets") == [1, 3]
    assert seqs(policy="read") == []  # exact ids, not substrings
    assert seqs(action="tickets.read", decision="allow", agent="helper") == [3]
    assert seqs(since=T0 + 2, until=T0 + 4) == [2, 3]
    assert seqs(type_prefix="task.") == [5]
    assert [r.seq for r in store.search_audit(AuditQuery(), after_seq=2, limit=2)] == [3, 4]
    assert [t.id for t in store.task_subtree("root")] == ["root", "child", "grandchild"]
    with pytest.raises(NotFoundError):
        store.task_subtree("nope")
