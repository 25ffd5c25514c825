"""Management API: agents inventory, operator auth, enforcement modes, hot reload, audit chain."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import text

from tests.api.conftest import World


def test_agent_lifecycle(world: World) -> None:
    c, admin = world.client, world.admin
    agent = world.register()
    assert agent["spiffe_id"] == "spiffe://example.org/agent/support-bot"
    assert agent["status"] == "active"
    assert (
        c.post(
            "/v1/agents",
            json={"name": "support-bot", "owner": "a@b", "purpose": "x"},
            headers=admin,
        ).status_code
        == 409
    )
    listed = c.get("/v1/agents", headers=admin).json()["agents"]
    assert [a["name"] for a in listed] == ["support-bot"]
    upd = c.patch(
        "/v1/agents/support-bot",
        json={"risk_tier": "high", "entitlements": ["tickets.read"]},
        headers=admin,
    )
    assert upd.status_code == 200 and upd.json()["risk_tier"] == "high"
    assert upd.json()["entitlements"] == ["tickets.read"]
    assert c.post("/v1/agents/support-bot/suspend", headers=admin).json()["status"] == "suspended"
    assert c.post("/v1/agents/support-bot/suspend", headers=admin).status_code == 409
    assert c.post("/v1/agents/support-bot/reactivate", headers=admin).json()["status"] == "active"
    assert (
        c.post("/v1/agents/support-bot/decommission", headers=admin).json()["status"]
        == "decommissioned"
    )
    assert (
        c.patch("/v1/agents/support-bot", json={"purpose": "y"}, headers=admin).status_code == 409
    )
    types = [r["type"] for r in world.audit("agent.")]
    assert types == [
        "agent.registered",
        "agent.updated",
        "agent.suspended",
        "agent.reactivated",
        "agent.decommissioned",
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"owner": "a@example.com", "purpose": "x"}, "name"),
        ({"name": "Bad Name", "owner": "a@example.com", "purpose": "x"}, "name"),
        ({"name": "ok", "purpose": "x"}, "owner"),
        ({"name": "ok", "owner": "a@example.com"}, "purpose"),
        (
            {"name": "ok", "owner": "a@example.com", "purpose": "x", "risk_tier": "extreme"},
            "risk_tier",
        ),
        (
            {"name": "ok", "owner": "a@example.com", "purpose": "x", "spiffe_id": "SPIFFE://x/y"},
            "spiffe",
        ),
        ({"name": "ok", "owner": "a@example.com", "purpose": "x", "entitlements": 'a"b'}, "scope"),
        ({"name": "ok", "owner": "a@example.com", "purpose": "x", "groups": [1]}, "groups"),
    ],
)
def test_bad_registrations_are_400_and_write_nothing(
    world: World, body: dict[str, Any], field: str
) -> None:
    r = world.client.post("/v1/agents", json=body, headers=world.admin)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "invalid_parameter"
    assert world.client.get("/v1/agents", headers=world.admin).json()["agents"] == []


def test_management_requires_an_operator(world: World) -> None:
    c = world.client
    assert c.get("/v1/agents").status_code == 401
    r = c.get("/v1/agents", headers={"Authorization": "Bearer wdn_op_forged"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
    assert c.get("/v1/audit", headers={"Authorization": "Basic abc"}).status_code == 401
    assert c.get("/v1/agents/does-not-exist", headers=world.admin).status_code == 404
    assert c.get("/v1/agents/..%2F..%2Fetc", headers=world.admin).status_code in (400, 404)


def test_policy_level_monitor_mode(world: World) -> None:
    world.register()
    t = world.start_task(scope="tickets.delete")
    d = world.decide(t["access_token"], t["spiffe_id"], "tickets.delete")
    assert d["decision"] is True
    assert d["context"]["reason"] == "allowed"
    assert d["context"]["monitor"] == {
        "by": "policy",
        "would_deny": True,
        "policies": ["no-deletes-yet"],
        "reason": "policy",  # what enforcement would have answered
    }
    record = world.audit("authz.decision")[-1]
    assert record["data"]["decision"] == "allow"
    assert record["data"]["monitor"]["policies"] == ["no-deletes-yet"]


def test_agent_monitor_mode_is_audited_and_reported(world: World) -> None:
    world.register()
    t = world.start_task(scope="email.send")
    external = {"arguments": {"to": "eve@evil.test"}}
    assert (
        world.decide(t["access_token"], t["spiffe_id"], "email.send", **external)["decision"]
        is False
    )
    r = world.client.put(
        "/v1/policies/modes",
        json={"kind": "agent", "value": "support-bot", "mode": "monitor"},
        headers=world.admin,
    )
    assert r.status_code == 200 and r.json()["agents"] == {"support-bot": "monitor"}
    d = world.decide(t["access_token"], t["spiffe_id"], "email.send", **external)
    assert d["decision"] is True
    assert d["context"]["monitor"]["by"] == "agent"
    assert d["context"]["monitor"]["policies"] == ["no-external-email"]
    report = world.client.get("/v1/reports/monitor", headers=world.admin).json()
    assert report["count"] == 1
    assert report["would_have_denied"][0]["policies"] == ["no-external-email"]
    changes = world.audit("policy.mode_changed")
    assert changes[0]["data"]["to"] == "monitor"
    world.client.put(
        "/v1/policies/modes",
        json={"kind": "agent", "value": "support-bot", "mode": "default"},
        headers=world.admin,
    )
    assert (
        world.decide(t["access_token"], t["spiffe_id"], "email.send", **external)["decision"]
        is False
    )
    bad = world.client.put(
        "/v1/policies/modes",
        json={"kind": "agent", "value": "x", "mode": "lax"},
        headers=world.admin,
    )
    assert bad.status_code == 400


def test_hot_reload_keeps_last_good_set(world: World) -> None:
    rec = {
        "subject": {"type": "user", "id": "bob"},
        "action": {"name": "write"},
        "resource": {"type": "record", "id": "record-1"},
    }
    assert world.client.post("/access/v1/evaluation", json=rec).json()["decision"] is False
    good = world.warden.pdp.revision
    (world.policies / "extra.cedar").write_text(
        '@id("bob-writes") permit (principal == user::"bob", action == Action::"write", resource);'
    )
    _wait(lambda: world.warden.pdp.revision != good)
    assert world.client.post("/access/v1/evaluation", json=rec).json()["decision"] is True
    serving = world.warden.pdp.revision
    (world.policies / "broken.cedar").write_text("permit (principal, action, resource")
    _wait(lambda: world.warden.policy_error is not None)
    assert world.warden.pdp.revision == serving
    assert world.client.post("/access/v1/evaluation", json=rec).json()["decision"] is True
    assert world.audit("policy.rejected")
    shown = world.client.get("/v1/policies", headers=world.admin).json()
    assert shown["revision"] == serving and "broken.cedar" in shown["last_error"]


def _wait(cond: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached")


def test_audit_chain_verifies_and_detects_tampering(world: World) -> None:
    world.register()
    t = world.start_task()
    world.decide(t["access_token"], t["spiffe_id"], "tickets.read")
    world.warden.writer.flush()
    ok = world.client.get("/v1/audit/verify", headers=world.admin).json()
    assert ok["ok"] is True and ok["records"] >= 4
    page = world.client.get("/v1/audit", params={"limit": "2"}, headers=world.admin).json()
    assert len(page["records"]) == 2 and page["next"] == page["records"][-1]["seq"]
    target = world.audit("authz.decision")[0]["seq"]
    engine = world.warden.store.engine  # type: ignore[attr-defined]
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE audit_events SET data = :d WHERE seq = :s"),
            {"d": '{"decision":"deny"}', "s": target},
        )
    broken = world.client.get("/v1/audit/verify", headers=world.admin).json()
    assert broken["ok"] is False
    assert broken["first_bad_seq"] == target


def test_health_readiness_and_metrics(world: World) -> None:
    c = world.client
    assert c.get("/healthz").json() == {"status": "ok"}
    ready = c.get("/readyz")
    assert ready.status_code == 200 and ready.json()["policy_revision"] == world.warden.pdp.revision
    assert ready.json()["reasons"] == []
    world.register()
    t = world.start_task()
    world.decide(t["access_token"], t["spiffe_id"], "tickets.read")
    world.decide(t["access_token"], t["spiffe_id"], "payments.refund")
    text_ = c.get("/metrics").text
    assert 'warden_decisions_total{decision="allow"} 1.0' in text_
    assert 'warden_decisions_total{decision="deny"} 1.0' in text_
    assert 'warden_token_requests_total{outcome="issued"} 1.0' in text_
    assert "warden_active_tasks 1.0" in text_
    assert c.get("/openapi.json").json()["info"]["title"] == "Warden"


def test_pdp_requires_authenticated_peps_off_loopback(world: World) -> None:
    from dataclasses import replace

    world.warden.settings = replace(
        world.warden.settings, host="0.0.0.0", pep_api_keys=("pep-key-1",)
    )
    body = {
        "subject": {"type": "user", "id": "alice"},
        "action": {"name": "read"},
        "resource": {"type": "record", "id": "record-1"},
    }
    anon = world.client.post("/access/v1/evaluation", json=body)
    assert anon.status_code == 401 and anon.headers["www-authenticate"].startswith("Bearer")
    wrong = world.client.post(
        "/access/v1/evaluation", json=body, headers={"Authorization": "Bearer nope"}
    )
    assert wrong.status_code == 401
    ok = world.client.post(
        "/access/v1/evaluation", json=body, headers={"Authorization": "Bearer pep-key-1"}
    )
    assert ok.status_code == 200 and ok.json()["decision"] is True
    assert (
        world.client.post("/access/v1/evaluation", json=body, headers=world.admin).status_code
        == 200
    )


def test_a_folder_change_is_never_undone_by_the_policy_poll(world: World) -> None:
    """Activating a folder's set and publishing it are one step: a poll in between used to see
    the new set served and the old one published, and put the old one back."""
    seen: list[str | None] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            world.warden.policy_sync.sync()
            seen.append(world.warden.pdp.revision)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    loaded: list[str] = []
    served: list[str | None] = []  # what this replica serves right after each reload
    try:
        for i in range(30):
            (world.policies / "extra.cedar").write_text(
                f'@id("extra-{i}") permit (principal == user::"u{i}", action, resource);'
            )
            loaded.append(world.warden.reload_policies())
            served.append(world.warden.pdp.revision)
    finally:
        stop.set()
        poller.join(10)
    assert served == loaded, "a poll put the previous revision back"
    order = {revision: i for i, revision in enumerate(loaded)}
    positions = [order[r] for r in seen if r in order]
    assert positions == sorted(positions), "a poll put an older revision back"
    assert world.warden.pdp.revision == loaded[-1]
