"""The behaviour monitor on shared Redis counters (ADR 0094): two monitors stand for two
replicas; each has its own Redis client on one key prefix. Times are passed explicitly, so
windows are exercised without sleeping."""

from __future__ import annotations

import time
from collections.abc import Callable

from warden.behaviour import BehaviourMonitor, BehaviourSettings, parse_declared
from warden.core.counters import Claim
from warden.core.model import Agent, RiskTier
from warden.storage.redis_counters import RedisCounters

Make = Callable[[], RedisCounters]
AGENT = Agent("bot", "spiffe://example.org/agent/bot", "alice", "test", RiskTier.LOW, ("t",))


def _pair(make: Make, baseline: dict[str, object], **settings: object) -> list[BehaviourMonitor]:
    monitors = []
    for _ in range(2):
        m = BehaviourMonitor(BehaviourSettings(**settings), make())  # type: ignore[arg-type]
        m.set_declared("bot", parse_declared(baseline))
        monitors.append(m)
    return monitors


def _call(m: BehaviourMonitor, now: float, *, allowed: bool = True, cost: float = 0) -> str | None:
    ctx = {"cost": cost} if cost else {}
    obs = m.observe(AGENT, "tsk_1", "support", "t", ctx, now)
    if obs.refusal is None:
        m.outcome(AGENT, "t", allowed, ctx, now, refund=obs.refund)
    return obs.refusal


def test_two_monitors_share_one_call_budget(counters: Make) -> None:
    a, b = _pair(counters, {"budgets": {"calls": 3}})
    now = time.time()
    refusals = [_call((a, b)[i % 2], now) for i in range(6)]
    assert refusals == [None, None, None, "budget_exceeded", "budget_exceeded", "budget_exceeded"]


def test_a_denied_call_gives_its_reservation_back(counters: Make) -> None:
    a, b = _pair(counters, {"budgets": {"calls": 1}})
    now = time.time()
    assert _call(a, now, allowed=False) is None  # reserved, then denied by policy
    assert a.shared is not None and a.shared.drain()  # type: ignore[attr-defined]
    assert _call(b, now) is None  # the budget was handed back: B may use it
    assert _call(a, now) == "budget_exceeded"


def test_a_cost_budget_is_shared_and_explained(counters: Make) -> None:
    a, b = _pair(counters, {"budgets": {"cost": 10}})
    now = time.time()
    assert _call(a, now, cost=6) is None
    obs = b.observe(AGENT, "tsk_1", "support", "t", {"cost": 6}, now)
    assert obs.refusal == "budget_exceeded"
    assert obs.detail == (
        "agent cost budget of 10 would be exceeded (6 spent, this call 6) per 3600 s"
    )


def test_the_window_slides_on_shared_counters(counters: Make) -> None:
    a, b = _pair(counters, {"budgets": {"calls": 1}}, budget_window=60.0, buckets=6)
    now = 1_000_000.0
    assert _call(a, now) is None
    assert _call(b, now + 30) == "budget_exceeded"
    assert _call(b, now + 75) is None  # the first call's bucket left the window


def test_a_deny_streak_counts_denies_on_both_monitors(counters: Make) -> None:
    a, b = _pair(counters, {}, deny_streak=4)
    now = time.time()
    for i in range(4):
        m = (a, b)[i % 2]
        m.outcome(AGENT, "t", False, {}, now)
        assert m.shared is not None and m.shared.drain()  # type: ignore[attr-defined]
    found = [e.finding for m in (a, b) for e in m.outbox if e.finding.detector == "deny_streak"]
    assert [f.facts["deny_streak"] for f in found] == [4]  # raised once, by the 4th deny
    _call(a, now)  # an allow breaks the streak everywhere
    assert a.shared is not None and a.shared.drain()  # type: ignore[attr-defined]
    assert b.observe(AGENT, "tsk_1", "support", "t", {}, now).facts["deny_streak"] == 0


def test_unreachable_counters_refuse_the_call() -> None:
    closed = RedisCounters("redis://127.0.0.1:1/0", timeout=0.5)
    try:
        m = BehaviourMonitor(BehaviourSettings(), closed)
        obs = m.observe(AGENT, "tsk_1", "support", "t", {}, time.time())
        assert obs.refusal == "counters_unavailable"
        assert (closed.problem() or "").startswith("counters_unavailable")
    finally:
        closed.close()


def test_a_refused_claim_adds_nothing_but_the_unlimited_ones(counters: Make) -> None:
    c = counters()
    claims = [Claim("calls", 60, 12), Claim("budget", 60, 12, 1.0, 1.0)]
    now = time.time()
    assert c.reserve("x", claims, now).refused == -1
    second = c.reserve("x", claims, now)
    assert second.refused == 1
    assert second.totals == (2.0, 1.0)  # the call was counted; the budget stayed at its limit
