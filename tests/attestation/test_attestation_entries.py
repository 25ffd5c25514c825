"""Registration entries and join tokens over the management API, end to end through the token
endpoint, the audit log and Cedar's ``context.warden.attestation``."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.api.conftest import TOKEN_EXCHANGE, World
from warden.attestation.join_token import TOKEN_TYPE_JOIN_TOKEN

pytestmark = pytest.mark.attestation


def add_entry(world: World, agent: str, *selectors: str, status: int = 201) -> dict[str, Any]:
    r = world.client.post(
        f"/v1/agents/{agent}/entries", json={"selectors": list(selectors)}, headers=world.admin
    )
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    return body


def exchange_with(world: World, token: str, token_type: str, scope: str = "tickets.read") -> Any:
    return world.client.post(
        "/oauth2/token",
        data={
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": token,
            "subject_token_type": token_type,
            "scope": scope,
            "authorization_details": json.dumps([{"type": "agent_task", "purpose": "triage"}]),
        },
    )


def test_entry_maps_another_spiffe_id_to_the_agent(world: World) -> None:
    world.register("support-bot")
    workload = "spiffe://example.org/ns/support/sa/runner"
    entry = add_entry(world, "support-bot", f"spiffe:id:{workload}")
    assert entry["selectors"] == [f"spiffe:id:{workload}"]
    listed = world.client.get("/v1/agents/support-bot/entries", headers=world.admin).json()
    assert [e["id"] for e in listed["entries"]] == [entry["id"]]

    r = world.exchange(world.trust.mint(workload, "warden"))
    assert r.status_code == 200, r.text
    task = world.client.get(f"/v1/tasks/{r.json()['task_id']}", headers=world.admin).json()
    assert task["agent"] == "support-bot"
    att = task["attestation"]
    assert att["method"] == "jwt_svid"
    assert att["entry"] == {"id": entry["id"], "selectors": [f"spiffe:id:{workload}"]}
    assert att["selectors"] == [f"spiffe:id:{workload}"]
    started = [a for a in world.audit("task.started") if a["task_id"] == task["id"]]
    assert started[0]["data"]["attestation"]["entry"]["id"] == entry["id"]

    # removing the entry stops the mapping at once
    r = world.client.delete(f"/v1/agents/support-bot/entries/{entry['id']}", headers=world.admin)
    assert r.status_code == 200
    r = world.exchange(world.trust.mint(workload, "warden"))
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    refused = world.audit("task.refused")[-1]["data"]
    assert refused["reason"] == "unknown_agent"
    types = [a["type"] for a in world.audit("agent.entry")]
    assert types == ["agent.entry_added", "agent.entry_removed"]


def test_the_agents_own_spiffe_id_is_an_implicit_entry(world: World) -> None:
    agent = world.register("support-bot")
    r = world.exchange(world.trust.mint(agent["spiffe_id"], "warden"))
    assert r.status_code == 200, r.text
    task = world.client.get(f"/v1/tasks/{r.json()['task_id']}", headers=world.admin).json()
    assert task["attestation"]["entry"]["id"] == "implicit:spiffe-id"


def test_an_identity_matching_two_agents_is_refused(world: World) -> None:
    world.register("support-bot")
    world.register("other-bot")
    workload = "spiffe://example.org/shared"
    add_entry(world, "support-bot", f"spiffe:id:{workload}")
    add_entry(world, "other-bot", f"spiffe:id:{workload}", "spiffe:td:example.org")
    before = world.client.get("/v1/tasks", headers=world.admin).json()["tasks"]
    r = world.exchange(world.trust.mint(workload, "warden"))
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert "2 agents" in r.json()["error_description"]
    refused = world.audit("task.refused")[-1]["data"]
    assert refused["reason"] == "ambiguous_identity"
    assert refused["method"] == "jwt_svid"
    assert world.client.get("/v1/tasks", headers=world.admin).json()["tasks"] == before


@pytest.mark.parametrize(
    ("selectors", "fragment"),
    [
        ([], "at least one selector"),
        (["unix:uid:abc"], "needs a number"),
        (["unix:sha256:XYZ"], "64 lowercase hex"),
        (["unix:path:relative/bin"], "absolute path"),
        (["unix:uid:1", "k8s:ns:default"], "one attestation family"),
        (["k8s:namespace:x"], "unknown selector"),
        (["nocolon"], "<type>:<key>:<value>"),
        (["spiffe:id:Spiffe://example.org/x"], "spiffe id"),
        (["spiffe:id:spiffe://example.org/a/../b"], "spiffe id"),
        (["spiffe:id:spiffe://example.org/x?q=1"], "spiffe id"),
        (["spiffe:id:spiffe://example.org:8080/x"], "spiffe id"),
        ([f"spiffe:id:spiffe://example.org/{'a' * 2100}"], "spiffe id"),
        ("k8s:ns:x", "list of strings"),
    ],
)
def test_bad_selectors_are_refused(world: World, selectors: Any, fragment: str) -> None:
    world.register("support-bot")
    r = world.client.post(
        "/v1/agents/support-bot/entries", json={"selectors": selectors}, headers=world.admin
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "invalid_parameter"
    assert fragment.lower() in r.json()["error"]["message"].lower()
    assert world.client.get("/v1/agents/support-bot/entries", headers=world.admin).json() == {
        "entries": []
    }


def test_entries_need_an_operator_and_a_known_agent(world: World) -> None:
    r = world.client.post("/v1/agents/x/entries", json={"selectors": ["unix:uid:1"]})
    assert r.status_code == 401
    r = world.client.post(
        "/v1/agents/ghost/entries", json={"selectors": ["unix:uid:1"]}, headers=world.admin
    )
    assert r.status_code == 404
    world.register("support-bot")
    world.register("other-bot")
    add_entry(world, "support-bot", "unix:uid:7")
    body = add_entry(world, "other-bot", "unix:uid:7", status=409)
    assert body["error"]["code"] == "conflict"


# -- join tokens --------------------------------------------------------------------------------


def create_join_token(world: World, agent: str, ttl: float = 600) -> dict[str, Any]:
    r = world.client.post(f"/v1/agents/{agent}/join-tokens", json={"ttl": ttl}, headers=world.admin)
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    body: dict[str, Any] = r.json()
    return body


def test_join_token_starts_one_task_then_is_dead(world: World) -> None:
    world.register("support-bot")
    created = create_join_token(world, "support-bot")
    assert created["token_type"] == TOKEN_TYPE_JOIN_TOKEN
    token = created["token"]
    r = exchange_with(world, token, TOKEN_TYPE_JOIN_TOKEN)
    assert r.status_code == 200, r.text
    task = world.client.get(f"/v1/tasks/{r.json()['task_id']}", headers=world.admin).json()
    assert task["agent"] == "support-bot"
    assert task["attestation"]["method"] == "join_token"
    assert task["attestation"]["join_token"] == created["id"]

    replay = exchange_with(world, token, TOKEN_TYPE_JOIN_TOKEN)
    assert replay.status_code == 400
    refused = world.audit("task.refused")[-1]["data"]
    assert refused["reason"] == "join_token_used"
    # the secret never reaches the audit log
    assert all(token not in json.dumps(a) for a in world.audit())


def test_join_token_expires_and_unknown_tokens_fail(world: World) -> None:
    world.register("support-bot")
    token = create_join_token(world, "support-bot", ttl=60)["token"]
    world.clock.advance(61)
    assert exchange_with(world, token, TOKEN_TYPE_JOIN_TOKEN).status_code == 400
    assert world.audit("task.refused")[-1]["data"]["reason"] == "join_token_expired"
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert exchange_with(world, forged, TOKEN_TYPE_JOIN_TOKEN).status_code == 400
    assert world.audit("task.refused")[-1]["data"]["reason"] == "join_token_unknown"
    assert exchange_with(world, "garbage", TOKEN_TYPE_JOIN_TOKEN).status_code == 400
    assert world.audit("task.refused")[-1]["data"]["reason"] == "malformed"


def test_a_refused_exchange_leaves_the_join_token_usable(world: World) -> None:
    world.register("support-bot")
    token = create_join_token(world, "support-bot")["token"]
    r = exchange_with(world, token, TOKEN_TYPE_JOIN_TOKEN, scope="payments.refund")
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"
    r = exchange_with(world, token, TOKEN_TYPE_JOIN_TOKEN)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("ttl", [0, 5, 86401, "10m", True])
def test_join_token_ttl_is_bounded(world: World, ttl: Any) -> None:
    world.register("support-bot")
    r = world.client.post(
        "/v1/agents/support-bot/join-tokens", json={"ttl": ttl}, headers=world.admin
    )
    assert r.status_code == 400


# -- policy sees the attestation ----------------------------------------------------------------

POLICY = """
@id("delete-needs-x509")
forbid (principal, action == Action::"tickets.delete", resource)
unless { context.warden.attestation.method == "x509_svid" };
@id("summarise-needs-entry")
forbid (principal, action == Action::"tickets.summarise", resource)
unless { context.warden.attestation.selectors.contains("spiffe:td:example.org") };
"""


def test_cedar_sees_the_attestation(world: World) -> None:
    (world.policies / "attestation.cedar").write_text(POLICY)
    world.warden.reload_policies()
    agent = world.register("support-bot")
    task = world.start_task(scope="tickets.read tickets.delete tickets.summarise")
    token = task["access_token"]
    assert world.decide(token, agent["spiffe_id"], "tickets.read")["decision"] is True
    denied = world.decide(token, agent["spiffe_id"], "tickets.delete")
    assert denied["decision"] is False
    assert denied["context"]["reasons"] == ["delete-needs-x509"]
    # the implicit entry matches spiffe:id only, so the trust-domain selector is not "matched"
    summarise = world.decide(token, agent["spiffe_id"], "tickets.summarise")
    assert summarise["decision"] is False
    workload = "spiffe://example.org/runner"
    add_entry(world, "support-bot", f"spiffe:id:{workload}", "spiffe:td:example.org")
    r = world.exchange(world.trust.mint(workload, "warden"), "tickets.summarise")
    assert r.status_code == 200, r.text
    allowed = world.decide(r.json()["access_token"], agent["spiffe_id"], "tickets.summarise")
    assert allowed["decision"] is True
