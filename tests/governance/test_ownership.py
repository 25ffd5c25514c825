"""Owners and the agent lifecycle: transfer, orphaning with a grace period, unused and end-date
flags, decommissioning — driven by a FrozenClock through the API and the governance tick."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import World

pytestmark = pytest.mark.governance

DAY = 86400.0


def _gov(world: World, name: str) -> dict[str, Any]:
    r = world.client.get(f"/v1/agents/{name}/governance", headers=world.admin)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _status(world: World, name: str) -> str:
    status: str = world.client.get(f"/v1/agents/{name}", headers=world.admin).json()["status"]
    return status


def _types(world: World, agent: str | None = None) -> list[str]:
    return [r["type"] for r in world.audit() if agent is None or r["agent"] == agent]


def _add(world: World, *ids: str) -> None:
    for hid in ids:
        r = world.client.post("/v1/owners", json={"id": hid}, headers=world.admin)
        assert r.status_code == 201, r.text


def test_transfer_needs_known_active_owners(world: World) -> None:
    world.register("bot")
    r = world.client.post(
        "/v1/agents/bot/owners", json={"owners": ["ghost@example.com"]}, headers=world.admin
    )
    assert r.status_code == 404
    assert r.json()["error"]["details"] == {"owner": "ghost@example.com"}
    _add(world, "bob@example.com", "carol@example.com")
    world.client.post("/v1/owners/carol@example.com/deactivate", json={}, headers=world.admin)
    r = world.client.post(
        "/v1/agents/bot/owners", json={"owners": ["carol@example.com"]}, headers=world.admin
    )
    assert r.status_code == 409
    for bad in ([], "", [1], ["x"] * 11):
        r = world.client.post("/v1/agents/bot/owners", json={"owners": bad}, headers=world.admin)
        assert r.status_code == 400, bad
    assert world.client.get("/v1/agents/bot", headers=world.admin).json()["owner"] == (
        "alice@example.com"
    )

    r = world.client.post(
        "/v1/agents/bot/owners",
        json={"owners": ["bob@example.com", "alice@example.com"], "reason": "team change"},
        headers=world.admin,
    )
    assert r.status_code == 200, r.text
    owners = r.json()["owners"]
    assert [(o["id"], o["primary"]) for o in owners] == [
        ("bob@example.com", True),
        ("alice@example.com", False),
    ]
    assert world.client.get("/v1/agents/bot", headers=world.admin).json()["owner"] == (
        "bob@example.com"
    )
    moved = world.audit("agent.owner_transferred")
    assert moved[-1]["data"]["to"] == ["bob@example.com", "alice@example.com"]
    assert moved[-1]["actor"].startswith("operator:")


def test_owners_that_do_not_exist_are_not_found(world: World) -> None:
    for path in ("/v1/owners/nobody@x", "/v1/agents/nope/governance"):
        assert world.client.get(path, headers=world.admin).status_code == 404
    r = world.client.post("/v1/owners/nobody@x/deactivate", json={}, headers=world.admin)
    assert r.status_code == 404
    assert world.client.post("/v1/owners", json={"id": ""}, headers=world.admin).status_code == 400


def test_co_owner_takes_over_when_the_primary_leaves(world: World) -> None:
    world.register("bot")
    _add(world, "bob@example.com")
    world.client.post(
        "/v1/agents/bot/owners",
        json={"owners": ["alice@example.com", "bob@example.com"]},
        headers=world.admin,
    )
    r = world.client.post(
        "/v1/owners/alice@example.com/deactivate", json={"reason": "left"}, headers=world.admin
    )
    assert r.json() == {
        "owner": "alice@example.com",
        "status": "inactive",
        "promoted": ["bot"],
        "orphaned": [],
    }
    gov = _gov(world, "bot")
    assert gov["owners"][0] == {"id": "bob@example.com", "status": "active", "primary": True}
    assert gov["orphaned_at"] is None
    world.start_task("bot")  # bob is active, so the agent still works
    world.clock.advance(2 * DAY)
    world.warden.governance_tick()
    assert _status(world, "bot") == "active"


def test_orphaned_agent_is_suspended_after_the_grace_period(world: World) -> None:
    world.register("bot")
    task = world.start_task("bot")
    r = world.client.post("/v1/owners/alice@example.com/deactivate", json={}, headers=world.admin)
    assert r.json()["orphaned"] == ["bot"]
    assert _gov(world, "bot")["orphaned_at"] == world.clock.now()
    # an orphan cannot start new tasks (token exchange checks the owner)
    again = world.exchange(world.trust.mint(task["spiffe_id"], "warden"))
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"

    world.clock.advance(DAY - 60)
    world.warden.governance_tick()
    assert _status(world, "bot") == "active"  # still inside the grace period
    world.clock.advance(120)
    world.warden.governance_tick()
    assert _status(world, "bot") == "suspended"
    suspended = world.audit("agent.suspended")[-1]
    assert suspended["actor"] == "warden" and "orphaned" in suspended["data"]["reason"]
    # suspension cascades: its live task ended, its credential revoked
    assert (
        world.decide(task["access_token"], task["spiffe_id"], "tickets.read")["decision"] is False
    )
    assert "agent.orphaned" in _types(world, "bot")


def test_re_owning_within_the_grace_period_keeps_the_agent(world: World) -> None:
    world.register("bot")
    world.client.post("/v1/owners/alice@example.com/deactivate", json={}, headers=world.admin)
    world.clock.advance(DAY / 2)
    _add(world, "dana@example.com")
    r = world.client.post(
        "/v1/agents/bot/owners", json={"owners": ["dana@example.com"]}, headers=world.admin
    )
    assert r.status_code == 200
    assert r.json()["orphaned_at"] is None
    world.clock.advance(2 * DAY)
    world.warden.governance_tick()
    assert _status(world, "bot") == "active"
    assert "agent.reowned" in _types(world, "bot")


def test_owner_back_from_leave_re_owns_their_agents(world: World) -> None:
    world.register("bot")
    world.client.post("/v1/owners/alice@example.com/deactivate", json={}, headers=world.admin)
    r = world.client.post("/v1/owners/alice@example.com/reactivate", json={}, headers=world.admin)
    assert r.json()["reowned"] == ["bot"]
    again = world.client.post(
        "/v1/owners/alice@example.com/reactivate", json={}, headers=world.admin
    )
    assert again.status_code == 409
    world.clock.advance(3 * DAY)
    world.warden.governance_tick()
    assert _status(world, "bot") == "active"


def test_directory_sync_creates_and_deactivates(world: World) -> None:
    world.register("bot")
    world.register("helper", owner="erin@example.com")
    r = world.client.post(
        "/v1/owners/sync",
        json={
            "humans": [
                {"id": "alice@example.com", "status": "active"},
                {"id": "frank@example.com", "display_name": "Frank"},
            ],
            "full": True,
        },
        headers=world.admin,
    )
    assert r.status_code == 200, r.text
    assert r.json()["created"] == ["frank@example.com"]
    assert r.json()["deactivated"] == ["erin@example.com"]  # missing from a full export
    assert _gov(world, "helper")["orphaned_at"] is not None
    assert _gov(world, "bot")["orphaned_at"] is None
    bad = world.client.post(
        "/v1/owners/sync",
        json={"humans": [{"id": "x@example.com", "status": "gone"}]},
        headers=world.admin,
    )
    assert bad.status_code == 400
    assert world.client.get("/v1/owners/x@example.com", headers=world.admin).status_code == 404


def test_unused_agents_are_flagged_then_suspended(world: World) -> None:
    world.register("idle")
    world.register("busy")
    world.clock.advance(29 * DAY)
    world.start_task("busy")
    world.clock.advance(2 * DAY)
    world.warden.governance_tick()
    assert _gov(world, "idle")["flag_reason"] == "unused"
    assert _gov(world, "busy")["flagged_at"] is None
    flagged = world.audit("agent.flagged")
    assert [r["agent"] for r in flagged] == ["idle"]
    assert flagged[0]["data"]["suspend_at"] == world.clock.now() + 7 * DAY

    world.clock.advance(7 * DAY + 1)
    world.warden.governance_tick()
    assert _status(world, "idle") == "suspended"
    assert "unused" in world.audit("agent.suspended")[-1]["data"]["reason"]
    assert _status(world, "busy") == "active"


def test_use_after_a_flag_clears_it(world: World) -> None:
    world.register("bot")
    world.clock.advance(31 * DAY)
    world.warden.governance_tick()
    assert _gov(world, "bot")["flagged_at"] is not None
    world.start_task("bot")
    world.warden.governance_tick()
    assert _gov(world, "bot")["flagged_at"] is None
    assert "agent.unflagged" in _types(world, "bot")
    world.clock.advance(8 * DAY)
    world.warden.governance_tick()
    assert _status(world, "bot") == "active"


def test_agents_past_their_end_date_are_flagged_then_suspended(world: World) -> None:
    world.register("bot")
    end = world.clock.now() + 10 * DAY
    r = world.client.patch("/v1/agents/bot/governance", json={"end_date": end}, headers=world.admin)
    assert r.status_code == 200 and r.json()["end_date"] == end
    for bad in ({"end_date": "tomorrow"}, {"end_date": -1}, {"owner": "x"}, {}):
        assert (
            world.client.patch("/v1/agents/bot/governance", json=bad, headers=world.admin)
        ).status_code == 400
    world.clock.advance(5 * DAY)
    world.start_task("bot")
    world.clock.advance(5 * DAY + 1)
    world.warden.governance_tick()
    assert _gov(world, "bot")["flag_reason"] == "end_date"
    world.clock.advance(7 * DAY + 1)
    world.start_task("bot")  # in use, but past its end date all the same
    world.warden.governance_tick()
    assert _status(world, "bot") == "suspended"
    assert "end date" in world.audit("agent.suspended")[-1]["data"]["reason"]


def test_decommission_revokes_everything_and_keeps_the_record(world: World) -> None:
    world.register("bot")
    tasks = [world.start_task("bot"), world.start_task("bot")]
    r = world.client.post("/v1/agents/bot/decommission", json={}, headers=world.admin)
    assert r.status_code == 200 and r.json()["tasks_ended"] == 2
    for task in tasks:
        assert (
            world.decide(task["access_token"], task["spiffe_id"], "tickets.read")["decision"]
            is False
        )
    revoked = {r["data"]["jti"] for r in world.audit("credential.revoked")}
    issued = {r["data"]["jti"] for r in world.audit("credential.issued")}
    assert issued == revoked
    kept = world.client.get("/v1/agents/bot", headers=world.admin).json()
    assert kept["status"] == "decommissioned" and kept["owner"] == "alice@example.com"
    assert (
        world.client.post(
            "/v1/agents/bot/owners", json={"owners": ["alice@example.com"]}, headers=world.admin
        ).status_code
        == 409
    )
    world.clock.advance(60 * DAY)
    world.warden.governance_tick()  # nothing to flag on a retired agent
    assert "agent.flagged" not in _types(world, "bot")
