"""Attribution: query the log by agent, owner, task subtree, on-behalf-of human, tool, decision,
policy and time; reconstruct one task's story."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from warden.core.model import Credential

from .conftest import World

pytestmark = pytest.mark.governance


def _search(world: World, **params: Any) -> list[dict[str, Any]]:
    world.warden.writer.flush()
    r = world.client.get("/v1/audit", params={"limit": 1000, **params}, headers=world.admin)
    assert r.status_code == 200, r.text
    records: list[dict[str, Any]] = r.json()["records"]
    return records


def _setup(world: World) -> dict[str, Any]:
    world.register("bot")
    world.register("helper", owner="bob@example.com")
    details = [{"type": "agent_task", "purpose": "answer dana", "on_behalf_of": "dana@example.com"}]
    spiffe = world.client.get("/v1/agents/bot", headers=world.admin).json()["spiffe_id"]
    r = world.exchange(
        world.trust.mint(spiffe, "warden"), authorization_details=json.dumps(details)
    )
    assert r.status_code == 200, r.text
    mine = {**r.json(), "spiffe_id": spiffe}
    other = world.start_task("helper")
    world.decide(mine["access_token"], mine["spiffe_id"], "tickets.read")
    world.decide(mine["access_token"], mine["spiffe_id"], "email.send", arguments={"to": "a@b.c"})
    world.decide(other["access_token"], other["spiffe_id"], "tickets.read")
    # a subtask delegated to helper (the delegation feature records tasks with parent_id)
    store = world.warden.store
    parent = store.fetch_task(mine["task_id"])
    child = replace(
        parent,
        id="task_child",
        agent_name="helper",
        parent_id=parent.id,
        spiffe_id=other["spiffe_id"],
        created_at=parent.created_at + 1,
    )
    store.create_task(
        child,
        Credential("jti_child", child.id, "helper", child.created_at, child.created_at + 60, "kid"),
    )
    world.warden.auditor.record(
        "authz.decision",
        other["spiffe_id"],
        {
            "decision": "allow",
            "action": "tickets.summarise",
            "reasons": ["support-read"],
            "resource": {"type": "Tool", "id": "tickets.summarise"},
            "chain": [mine["spiffe_id"], other["spiffe_id"]],
        },
        agent="helper",
        task_id="task_child",
        decision_id="dec_child",
    )
    world.warden.auditor.record(
        "approval.granted",
        "operator:bob",
        {"approval_id": "apr_1"},
        agent="helper",
        task_id="task_child",
    )
    return {"mine": mine, "other": other}


def test_query_by_each_attribution_axis(world: World) -> None:
    tasks = _setup(world)
    mine = tasks["mine"]["task_id"]
    by_owner = _search(world, owner="bob@example.com")
    assert {r["agent"] for r in by_owner} == {"helper"}
    assert {r["task_id"] for r in _search(world, task=mine)} == {mine}
    subtree = {r["task_id"] for r in _search(world, task=mine, subtree="true")}
    assert subtree == {mine, "task_child"}
    # the delegated subtask acts for dana too
    on_behalf = {r["task_id"] for r in _search(world, on_behalf_of="dana@example.com")}
    assert on_behalf == {mine, "task_child"}
    tool = _search(world, tool="tickets.read", type="authz.decision")
    assert len(tool) == 2 and {r["data"]["action"] for r in tool} == {"tickets.read"}
    denied = _search(world, decision="deny")
    assert [r["data"]["action"] for r in denied] == ["email.send"]
    assert [r["data"]["reasons"] for r in _search(world, policy="no-external-email")] == [
        ["no-external-email"]
    ]
    ts = _search(world)[3]["ts"]
    assert all(r["ts"] >= ts for r in _search(world, since=ts))
    both = _search(world, agent="bot", decision="allow", tool="tickets.read")
    assert len(both) == 1
    for bad in ({"decision": "maybe"}, {"since": "yesterday"}, {"limit": 0}):
        assert world.client.get("/v1/audit", params=bad, headers=world.admin).status_code == 400


def test_a_task_story(world: World) -> None:
    tasks = _setup(world)
    mine = tasks["mine"]["task_id"]
    world.client.post(f"/v1/tasks/{mine}/complete", json={}, headers=world.admin)
    world.warden.writer.flush()
    r = world.client.get(f"/v1/audit/tasks/{mine}/story", headers=world.admin)
    assert r.status_code == 200, r.text
    story = r.json()
    assert story["task"]["id"] == mine
    assert story["agent_owner"] == "alice@example.com"
    assert story["on_behalf_of"] == "dana@example.com"
    assert story["attestation"]["method"] == "jwt_svid"
    assert [x["type"] for x in story["start"]] == ["task.started"]
    assert [x["type"] for x in story["credentials"]] == ["credential.issued", "credential.revoked"]
    assert [x["data"]["action"] for x in story["decisions"]] == ["tickets.read", "email.send"]
    assert story["decisions"][1]["policies"] == ["no-external-email"]
    assert story["decisions"][0]["chain"] == [tasks["mine"]["spiffe_id"]]
    assert [x["type"] for x in story["end"]] == ["task.completed"]
    child = story["subtasks"][0]
    assert child["task"]["id"] == "task_child"
    assert child["chain"] == [tasks["mine"]["spiffe_id"], tasks["other"]["spiffe_id"]]
    assert child["decisions"][0]["chain"] == child["chain"]
    assert [x["type"] for x in child["approvals"]] == ["approval.granted"]
    assert world.client.get("/v1/audit/tasks/nope/story", headers=world.admin).status_code == 404


def test_story_section_table_takes_new_record_types(world: World) -> None:
    world.register("bot")
    task = world.start_task("bot")
    world.warden.auditor.record(
        "lease.issued", "warden", {"lease_id": "l1"}, agent="bot", task_id=task["task_id"]
    )
    world.warden.auditor.record("brand.new", "warden", {}, agent="bot", task_id=task["task_id"])
    world.warden.writer.flush()
    story = world.client.get(f"/v1/audit/tasks/{task['task_id']}/story", headers=world.admin).json()
    assert [x["type"] for x in story["leases"]] == ["lease.issued"]
    assert [x["type"] for x in story["other"]] == ["brand.new"]
