"""Behavioural baselines, detectors, budgets and escalation (notify, step-up, suspend)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.approvals.conftest import Approvers, make_world
from tests.approvals.receiver import WebhookReceiver
from warden.behaviour import BehaviourSettings
from warden.webhooks import WebhookEndpoint, decode_secret

pytestmark = pytest.mark.approvals

BASELINE = {"destinations": ["api.example.com"], "calls_per_minute": 2, "tools": ["http.get"]}


@pytest.fixture
def hooks() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def bw(tmp_path: Path, hooks: WebhookReceiver) -> Iterator[Approvers]:
    endpoint = WebhookEndpoint(
        hooks.url, decode_secret(hooks.secret), frozenset({"alice@example.com"})
    )
    for world in make_world(
        tmp_path,
        behaviour=BehaviourSettings(rate_min_calls=5, intents={"support": frozenset({"read"})}),
        webhooks=(endpoint,),
        webhook_base_delay=0.05,
    ):
        world.warden.webhooks.start()
        yield world


def _get(aw: Approvers, task: dict[str, Any], host: str, path: str = "/v1/items") -> Any:
    aw.clock.advance(0.01)  # calls take time; findings then sort in the order they happened
    return aw.call(task, "http.get", destination=host, arguments={"url": f"https://{host}{path}"})


def _findings(aw: Approvers) -> list[dict[str, Any]]:
    aw.warden.govern()
    items: list[dict[str, Any]] = aw.client.get("/v1/findings", headers=aw.admin).json()["findings"]
    return list(reversed(items))


def test_a_new_destination_at_many_times_the_baseline_is_stepped_up_then_suspended(
    bw: Approvers, hooks: WebhookReceiver
) -> None:
    bw.agent(baseline=BASELINE)
    task = bw.start_task(scope="http.get")
    for _ in range(3):
        assert _get(bw, task, "api.example.com")["decision"] is True
    outcomes = []
    for _ in range(20):
        body = _get(bw, task, "exfil.example.net")
        outcomes.append(body["context"].get("reason", "allowed"))
        bw.warden.govern()
    # allowed at first, then held for the owner's approval, then refused: suspended
    assert outcomes[0] == "allowed"
    assert "approval_required" in outcomes
    first_held = outcomes.index("approval_required")
    assert all(o == "allowed" for o in outcomes[:first_held])
    assert "agent_suspended" in outcomes[first_held:] or "invalid_credential" in outcomes
    held = _get(bw, task, "exfil.example.net")
    assert held["decision"] is False and held["context"]["reason"] == "invalid_credential"

    detectors = [f["detector"] for f in _findings(bw)]
    assert detectors[0] == "first_destination"
    assert detectors.count("rate_spike") == 2
    assert "deny_streak" in detectors
    agent = bw.client.get("/v1/agents/support-bot", headers=bw.admin).json()
    assert agent["status"] == "suspended"

    types = [r["type"] for r in bw.audit()]
    assert types.index("behaviour.step_up") < types.index("agent.suspended")
    assert types.count("behaviour.finding") == len(detectors)
    step_up_request = bw.audit("approval.requested")[0]["data"]
    assert step_up_request["policies"] == ["warden:behaviour-step-up"]

    # the owner heard of each step, over signed webhooks
    hooks.wait_for("agent.suspended")
    events = [e["type"] for e in hooks.events()]
    assert events.index("behaviour.step_up") < events.index("agent.suspended")
    assert "behaviour.finding" in events and "approval.requested" in events
    assert all(r.verified and r.hand_verified for r in hooks.received)


def test_behaviour_facts_reach_cedar(bw: Approvers) -> None:
    bw.agent()
    task = bw.start_task(scope="facts.check")
    answers = [bw.call(task, "facts.check")["decision"] for _ in range(5)]
    # policy `no-bursts` forbids more than 3 calls in the window
    assert answers == [True, True, True, False, False]
    record = bw.audit("authz.decision")[-1]["data"]
    assert record["behaviour"]["calls_in_window"] == 5


def test_listings_are_not_calls(bw: Approvers) -> None:
    """A PEP filtering a tool list asks with ``context.listing``: nothing counts as a call."""
    bw.agent(baseline={"budgets": {"tools": {"facts.check": {"calls": 2}}}})
    task = bw.start_task(scope="facts.check")
    shown = [bw.call(task, "facts.check", listing=True)["decision"] for _ in range(6)]
    assert shown == [True] * 6
    calls = [bw.call(task, "facts.check")["decision"] for _ in range(3)]
    assert calls[:2] == [True, True]
    assert bw.call(task, "facts.check", listing=True)["decision"] is True
    record = bw.audit("authz.decision")[-1]["data"]
    assert record["behaviour"]["calls_in_window"] == 3


def test_budgets_are_limits(bw: Approvers) -> None:
    bw.agent(baseline={"budgets": {"cost": 10, "tools": {"http.get": {"calls": 2}}}})
    task = bw.start_task(scope="http.get tickets.read")
    assert _get(bw, task, "api.example.com")["decision"] is True
    assert _get(bw, task, "api.example.com")["decision"] is True
    refused = _get(bw, task, "api.example.com")
    assert refused["decision"] is False and refused["context"]["reason"] == "budget_exceeded"
    # a cost reported by the PEP counts against the agent's cost budget
    assert bw.call(task, "tickets.read", cost=6)["decision"] is True
    over = bw.call(task, "tickets.read", cost=6)
    assert over["context"]["reason"] == "budget_exceeded"
    detail = bw.audit("authz.decision")[-1]["data"]["detail"]
    assert "cost budget of 10" in detail
    assert {f["detector"] for f in _findings(bw)} == {"budget_exceeded"}


def test_scope_creep_deny_streaks_and_intent_drift(bw: Approvers) -> None:
    bw.agent()
    task = bw.start_task(scope="tickets.read")
    for tool in ("payments.refund", "tickets.delete", "tickets.export"):
        assert bw.call(task, tool)["context"]["reason"] == "out_of_scope"
    body = bw.call(task, "tickets.read", intent="wire-money", arguments={})
    assert body["decision"] is True
    found = {f["detector"]: f for f in _findings(bw)}
    assert "scope_creep" in found
    assert "3 times" in found["scope_creep"]["summary"]
    assert found["intent_drift"]["summary"].endswith(
        "outside its task's purpose category `support`"
    )
    # a declared-compatible intent is not drift
    bw.call(task, "tickets.read", intent="read")
    assert [f["detector"] for f in _findings(bw)].count("intent_drift") == 1


def test_off_hours_and_fan_out(bw: Approvers) -> None:
    hour = int(bw.clock.now() // 3600) % 24
    bw.agent(baseline={"active_hours": [(hour + 2) % 24, (hour + 4) % 24], "max_fan_out": 1})
    first = bw.start_task(scope="tickets.read")
    second = bw.start_task(scope="tickets.read")
    bw.call(first, "tickets.read")
    bw.call(second, "tickets.read")
    found = {f["detector"]: f for f in _findings(bw)}
    assert "outside its active hours" in found["off_hours"]["summary"]
    assert found["off_hours"]["severity"] == "medium"
    assert "2 tasks" in found["fan_out"]["summary"]


def test_a_learned_baseline_flags_a_new_tool_once_mature(tmp_path: Path) -> None:
    settings = BehaviourSettings(window=60, min_history=2)
    for aw in make_world(tmp_path, behaviour=settings):
        # the story spans ~3 minutes and learns the hour it runs in: keep it inside one UTC
        # hour, or the last call lands in an unlearned hour and also fires `off_hours`
        into_hour = aw.clock.now() % 3600
        if into_hour > 3600 - 300:
            aw.clock.advance(3600 - into_hour + 1)
        aw.agent()
        for _ in range(3):  # three calm windows of reading tickets
            task = aw.start_task(scope="tickets.read facts.check")
            aw.call(task, "tickets.read")
            aw.clock.advance(61)
        task = aw.start_task(scope="tickets.read facts.check")
        aw.call(task, "facts.check")
        found = _findings(aw)
        assert [f["detector"] for f in found] == ["first_tool"]
        assert found[0]["severity"] == "medium"
        aw.warden.behaviour.persist()
        view = aw.client.get("/v1/agents/support-bot/baseline", headers=aw.admin).json()
        assert view["learned"]["tools"] == ["tickets.read"]
        assert view["learned"]["windows"] == 3
        stored = {b.agent: b for b in aw.warden.store.list_baselines()}
        assert stored["support-bot"].learned["tools"] == ["tickets.read"]


def test_baselines_are_validated(bw: Approvers) -> None:
    bw.agent()
    bad = [
        {"tools": "http.get"},
        {"calls_per_minute": -1},
        {"active_hours": [25]},
        {"budgets": {"calls": 1.5}},
        {"colour": "blue"},
    ]
    for body in bad:
        r = bw.client.put("/v1/agents/support-bot/baseline", json=body, headers=bw.admin)
        assert r.status_code == 400, body
    r = bw.client.post(
        "/v1/agents",
        json={"name": "other", "owner": "a@example.com", "purpose": "x", "baseline": {"x": 1}},
        headers=bw.admin,
    )
    assert r.status_code == 400
    assert bw.client.get("/v1/agents/other", headers=bw.admin).status_code == 404
    r = bw.client.put("/v1/agents/support-bot/baseline", json=BASELINE, headers=bw.admin)
    assert r.status_code == 200 and r.json()["declared"] == BASELINE


def test_reactivation_clears_the_behavioural_suspension(bw: Approvers) -> None:
    bw.agent(baseline=BASELINE)
    task = bw.start_task(scope="http.get")
    for _ in range(20):
        _get(bw, task, "exfil.example.net")
        bw.warden.govern()
    assert bw.client.get("/v1/agents/support-bot", headers=bw.admin).json()["status"] == "suspended"
    bw.clock.advance(1)
    r = bw.client.post("/v1/agents/support-bot/reactivate", json={}, headers=bw.admin)
    assert r.status_code == 200
    task = bw.start_task(scope="http.get")
    assert _get(bw, task, "api.example.com")["decision"] is True


def test_failed_webhook_attempts_are_audited_and_retried(tmp_path: Path) -> None:
    with WebhookReceiver(fail_first=2) as hooks:
        endpoint = WebhookEndpoint(hooks.url, decode_secret(hooks.secret))
        for aw in make_world(tmp_path, webhooks=(endpoint,), webhook_base_delay=0.05):
            aw.warden.webhooks.start()
            aw.agent()
            task = aw.start_task(scope="tickets.delete")
            aw.call(task, "tickets.delete", arguments={"ticket": "T-1"})
            hooks.wait_for("approval.requested")
            aw.warden.webhooks.close()
            types = [r["type"] for r in aw.audit("webhook.")]
            assert types == [
                "webhook.queued",
                "webhook.attempt_failed",
                "webhook.attempt_failed",
                "webhook.delivered",
            ]
            failed = aw.audit("webhook.attempt_failed")[0]["data"]
            assert failed["status"] == 500 and failed["endpoint"].endswith("/hooks/warden")


def test_a_busy_agent_without_a_baseline_is_not_judged_on_its_rate(bw: Approvers) -> None:
    bw.agent()
    task = bw.start_task(scope="http.get")
    answers = [_get(bw, task, "api.example.com")["decision"] for _ in range(60)]
    assert all(answers)
    assert _findings(bw) == []
