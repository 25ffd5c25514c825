"""Freshness (ADR 0092) in one process, on a real SQLite store: the tracker's bound, an idle
single server that never goes stale by itself, a stale replica's refusal, and a deny-ward change
nobody announced that the freshness round applies."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lifecycle.test_replication import Pair
from tests.lifecycle.waiting import eventually
from warden.authz.authzen import ActionInput, EntityInput, EvaluationInput
from warden.service.freshness import Freshness

pytestmark = pytest.mark.faults


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_tracker_is_stale_only_past_the_bound_and_says_why() -> None:
    ticks = Ticks()
    fresh = Freshness(max_staleness=5.0, monotonic=ticks)
    ticks.now += 60.0  # not armed (no replication loop started): never stale
    assert fresh.stale_for() is None and not fresh.status().stale
    fresh.arm()  # the bound runs from the start of the loop
    ticks.now += 5.0
    assert fresh.stale_for() is None and not fresh.status().stale
    fresh.failing("cannot reach the database: connection refused")
    ticks.now += 0.5
    assert fresh.stale_for() == pytest.approx(5.5)
    status = fresh.status()
    assert status.stale and status.reason == "cannot reach the database: connection refused"
    assert "5.5s old (bound 5s)" in fresh.describe(5.5)
    fresh.confirm(ticks.now - 1.0)
    assert fresh.stale_for() is None and fresh.status().reason is None
    fresh.confirm(0.0)  # an older confirmation never moves freshness backwards
    assert fresh.status().age == pytest.approx(1.0)


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    p = Pair(tmp_path, None, resync_interval=3600, replication_max_staleness=2.0)
    yield p
    p.close()


def test_an_idle_sqlite_server_stays_fresh(pair: Pair) -> None:
    rounds = pair.a.replication.stats
    start = time.monotonic()
    eventually(lambda: time.monotonic() - start > 4.5, "two bounds of idle time", timeout=8)
    assert pair.a.replication.freshness.status().stale is False
    assert rounds.publish_failures == 0
    task = pair.start_task()
    assert pair.allowed(pair.a, task["access_token"]) is True


def test_a_stale_replica_refuses_agent_decisions_with_state_stale(pair: Pair) -> None:
    task = pair.start_task()
    assert pair.allowed(pair.b, task["access_token"]) is True
    pair.b.replication.close()  # no more freshness rounds: B's view ages past the bound
    eventually(lambda: pair.b.replication.freshness.status().stale, "B stale", timeout=15)
    ev = EvaluationInput(
        subject=EntityInput("agent", pair.agent.spiffe_id, {"token": task["access_token"]}),
        action=ActionInput("tools/call"),
        resource=EntityInput("tool", "tickets.read"),
        context={},
    )
    outcome = pair.b.decisions.evaluate(ev)
    assert outcome.allowed is False and outcome.context["reason"] == "state_stale"
    assert pair.allowed(pair.a, task["access_token"]) is True  # A is fresh


def test_a_revocation_nobody_announced_is_applied_by_the_freshness_round(pair: Pair) -> None:
    task = pair.start_task()
    assert pair.allowed(pair.b, task["access_token"]) is True
    jti = next(iter(c.jti for c in pair.a.store.list_credentials(task["task_id"])))
    # written straight to the database: no change-log row, no notification
    pair.a.store.revoke_credential(jti, revoked_at=time.time())
    eventually(lambda: jti in pair.b.state.revoked, "B applies the revocation", timeout=10)
    assert pair.allowed(pair.b, task["access_token"]) is False
    assert pair.b.replication.stats.deny_applied >= 1
