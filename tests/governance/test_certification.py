"""Certification campaigns: reviews with entitlements and actual use, one-request decisions,
deadlines that reduce or suspend, a schedule, and an audit record for every outcome."""

from __future__ import annotations

from typing import Any

import pytest

from warden.core.model import OperatorRole

from .conftest import World

pytestmark = pytest.mark.governance

DAY = 86400.0


def _start(world: World, **body: Any) -> dict[str, Any]:
    r = world.client.post("/v1/certifications", json=body, headers=world.admin)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def _review(campaign: dict[str, Any], agent: str) -> dict[str, Any]:
    return next(r for r in campaign["reviews"] if r["agent"] == agent)


def _agent(world: World, name: str) -> dict[str, Any]:
    body: dict[str, Any] = world.client.get(f"/v1/agents/{name}", headers=world.admin).json()
    return body


def _used_bot(world: World) -> None:
    world.register("bot")
    task = world.start_task("bot", "tickets.read email.send")
    world.decide(task["access_token"], task["spiffe_id"], "tickets.read")
    world.decide(
        task["access_token"], task["spiffe_id"], "email.send", arguments={"to": "x@y.test"}
    )


def test_a_review_shows_entitlements_and_what_was_used(world: World) -> None:
    _used_bot(world)
    world.register("idle", owner="bob@example.com")
    world.client.post("/v1/agents/idle/suspend", json={}, headers=world.admin)
    campaign = _start(world, every="90d", window="14d")
    assert campaign["every"] == 90 * DAY
    assert campaign["deadline"] == world.clock.now() + 14 * DAY
    assert [r["agent"] for r in campaign["reviews"]] == ["bot"]  # active agents only
    review = _review(campaign, "bot")
    assert review["owner"] == "alice@example.com"
    assert review["used"] == ["tickets.read"]  # the denied email does not count as use
    assert "email.send" in review["unused"]
    assert set(review["actions"]) == {"keep", "reduce", "revoke"}
    opened = world.audit("certification.review_opened")
    assert opened[0]["data"]["used"] == ["tickets.read"] and opened[0]["agent"] == "bot"


def test_starting_twice_is_a_conflict(world: World) -> None:
    world.register("bot")
    _start(world)
    r = world.client.post("/v1/certifications", json={}, headers=world.admin)
    assert r.status_code == 409 and r.json()["error"]["code"] == "conflict"
    for bad in (
        {"every": "soon"},
        {"every": "-5d"},
        {"on_timeout": "ignore"},
        {"every": "1d", "window": "7d"},
    ):
        assert (
            world.client.post("/v1/certifications", json=bad, headers=world.admin).status_code
            == 400
        )


def test_keep_reduce_and_revoke(world: World) -> None:
    _used_bot(world)
    world.register("spare", entitlements=["tickets.read", "tickets.delete"])
    world.register("rogue", entitlements=["tickets.read"])
    campaign = _start(world)
    reviews = {r["agent"]: r for r in campaign["reviews"]}

    kept = world.client.post(
        f"/v1/certifications/reviews/{reviews['spare']['id']}/keep", headers=world.admin
    )
    assert kept.status_code == 200 and kept.json()["status"] == "kept"
    again = world.client.post(
        f"/v1/certifications/reviews/{reviews['spare']['id']}/revoke", headers=world.admin
    )
    assert again.status_code == 409

    reduced = world.client.post(
        f"/v1/certifications/reviews/{reviews['bot']['id']}/reduce", headers=world.admin
    )
    assert reduced.json()["result"] == ["tickets.read"]
    assert _agent(world, "bot")["entitlements"] == ["tickets.read"]

    revoked = world.client.post(
        f"/v1/certifications/reviews/{reviews['rogue']['id']}/revoke", headers=world.admin
    )
    assert revoked.json()["status"] == "revoked"
    assert _agent(world, "rogue")["status"] == "suspended"
    assert _agent(world, "rogue")["entitlements"] == []

    types = [r["type"] for r in world.audit("certification.")]
    assert {
        "certification.kept",
        "certification.reduced",
        "certification.revoked",
        "certification.closed",
    } <= set(types)
    closed = world.audit("certification.closed")[-1]["data"]
    assert closed == {"campaign": campaign["id"], "kept": 1, "reduced": 1, "revoked": 1}
    governance = world.client.get("/v1/agents/spare/governance", headers=world.admin).json()
    assert governance["last_certified_at"] == world.clock.now()


def test_reduce_to_a_chosen_subset_only(world: World) -> None:
    _used_bot(world)
    review = _review(_start(world), "bot")
    url = f"/v1/certifications/reviews/{review['id']}/reduce"
    bad = world.client.post(url, json={"entitlements": ["payments.refund"]}, headers=world.admin)
    assert bad.status_code == 400
    ok = world.client.post(url, json={"entitlements": ["email.send"]}, headers=world.admin)
    assert ok.json()["result"] == ["email.send"]
    assert world.client.post(
        f"/v1/certifications/reviews/{review['id']}/maybe", headers=world.admin
    ).status_code in (400, 409)


def test_only_the_owner_or_an_admin_decides(world: World) -> None:
    _used_bot(world)
    review = _review(_start(world), "bot")
    _, token = world.warden.operators.create("mallory@example.com", OperatorRole.APPROVER, "test")
    mallory = {"Authorization": f"Bearer {token}"}
    r = world.client.post(f"/v1/certifications/reviews/{review['id']}/keep", headers=mallory)
    assert r.status_code == 403
    _, token = world.warden.operators.create("alice@example.com", OperatorRole.APPROVER, "test")
    alice = {"Authorization": f"Bearer {token}"}
    r = world.client.post(f"/v1/certifications/reviews/{review['id']}/keep", headers=alice)
    assert r.status_code == 200
    assert world.audit("certification.kept")[-1]["actor"] == "operator:alice@example.com"


def test_unanswered_reviews_are_reduced_to_what_was_used(world: World) -> None:
    _used_bot(world)
    world.register("idle", entitlements=["tickets.read"])
    campaign = _start(world, window="14d")
    world.clock.advance(13 * DAY)
    world.warden.governance_tick()
    assert _agent(world, "bot")["entitlements"] != ["tickets.read"]  # not yet due
    world.clock.advance(DAY + 1)
    world.warden.governance_tick()
    assert _agent(world, "bot")["entitlements"] == ["tickets.read"]
    assert _agent(world, "idle")["status"] == "suspended"  # used nothing: nothing to keep
    expired = {r["agent"]: r["data"] for r in world.audit("certification.expired")}
    assert expired["bot"]["removed"] == [
        "email.send",
        "facts.check",
        "tickets.delete",
        "tickets.summarise",
    ]
    assert expired["idle"]["suspended"] is True
    shown = world.client.get(f"/v1/certifications/{campaign['id']}", headers=world.admin).json()
    assert shown["status"] == "closed"
    late = world.client.post(
        f"/v1/certifications/reviews/{_review(campaign, 'bot')['id']}/keep", headers=world.admin
    )
    assert late.status_code == 409


def test_timeout_can_suspend_instead(world: World) -> None:
    _used_bot(world)
    _start(world, window="1d", on_timeout="suspend")
    world.clock.advance(DAY + 1)
    world.warden.governance_tick()
    assert _agent(world, "bot")["status"] == "suspended"


def test_every_opens_the_next_campaign_on_schedule(world: World) -> None:
    world.register("bot")
    first = _start(world, every="90d", window="14d")
    world.clock.advance(15 * DAY)
    world.warden.governance_tick()  # first expires and closes
    world.clock.advance(74 * DAY)
    world.warden.governance_tick()
    campaigns = world.client.get("/v1/certifications", headers=world.admin).json()["campaigns"]
    assert len(campaigns) == 1
    world.clock.advance(DAY + 1)
    world.warden.governance_tick()
    campaigns = world.client.get("/v1/certifications", headers=world.admin).json()["campaigns"]
    assert [c["id"] for c in campaigns][1] == first["id"]
    second = campaigns[0]
    assert second["status"] == "open" and second["every"] == 90 * DAY
    assert second["started_by"] == "warden"
    assert second["period_start"] == first["started_at"]
