"""Delegation chains for agent swarms: RFC 8693 actor tokens, `act` nesting, bounded depth,
no cycles, `may_act`, scope never widening, and ending a task ends its whole subtree."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.helpers import unverified
from tests.lifecycle.conftest import LifecycleWorld, WorldFactory

pytestmark = pytest.mark.lifecycle


def _decide(lw: LifecycleWorld, task: dict[str, Any], tool: str) -> dict[str, Any]:
    return lw.decide(task["access_token"], task["spiffe_id"], tool)


def test_a_subtask_credential_nests_the_chain_and_records_parent_and_human(
    lw: LifecycleWorld,
) -> None:
    root = lw.start("planner", "tickets.read data.read data.write", on_behalf_of="bob@example.com")
    r = lw.delegate("worker", root["access_token"], "data.read tickets.read")
    assert r.status_code == 200, r.text
    child = r.json()
    _, claims = unverified(child["access_token"])
    assert claims["sub"] == lw.spiffe("worker")
    assert claims["act"] == {"sub": lw.spiffe("planner")}
    detail = child["authorization_details"][0]
    assert detail["parent_id"] == root["task_id"]
    assert detail["chain"] == [lw.spiffe("planner"), lw.spiffe("worker")]
    assert detail["depth"] == 1
    task = lw.client.get(f"/v1/tasks/{child['task_id']}", headers=lw.admin).json()
    assert task["parent_id"] == root["task_id"]
    assert task["on_behalf_of"] == "bob@example.com"  # the human the root acts for
    assert (
        task["expires_at"]
        <= lw.client.get(f"/v1/tasks/{root['task_id']}", headers=lw.admin).json()["expires_at"]
    )

    grandchild = lw.delegate("helper", child["access_token"], "data.read").json()
    _, deep = unverified(grandchild["access_token"])
    # the outermost act is the most recent actor; the deepest the first
    assert deep["act"] == {"sub": lw.spiffe("worker"), "act": {"sub": lw.spiffe("planner")}}
    started = [r for r in lw.audit("task.started") if r["task_id"] == grandchild["task_id"]]
    assert started[0]["data"]["chain"] == [lw.spiffe(n) for n in ("planner", "worker", "helper")]
    assert started[0]["data"]["parent_id"] == child["task_id"]


def test_cedar_sees_the_chain_and_depth_and_decisions_name_the_chain(lw: LifecycleWorld) -> None:
    root = lw.start("planner", "data.read data.write")
    child = {
        **lw.delegate("worker", root["access_token"], "data.read data.write").json(),
        "spiffe_id": lw.spiffe("worker"),
    }
    # data.read is permitted only to tasks delegated from the planner (depth >= 1)
    assert _decide(lw, root, "data.read")["decision"] is False
    assert _decide(lw, child, "data.read")["decision"] is True
    # writes stay with the root task
    assert _decide(lw, root, "data.write")["decision"] is True
    denied = _decide(lw, child, "data.write")
    assert denied["decision"] is False
    assert denied["context"]["reasons"] == ["no-delegated-writes"]
    decisions = [d for d in lw.audit("authz.decision") if d["task_id"] == child["task_id"]]
    assert {tuple(d["data"]["chain"]) for d in decisions} == {
        (lw.spiffe("planner"), lw.spiffe("worker"))
    }
    assert {d["data"]["depth"] for d in decisions} == {1}


def test_a_child_never_gets_more_than_its_parent_holds(lw: LifecycleWorld) -> None:
    root = lw.start("planner", "tickets.read")
    r = lw.delegate("worker", root["access_token"], "tickets.read data.write")
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_scope"
    refused = lw.audit("task.refused")[-1]
    assert refused["data"]["reason"] == "delegation_scope_exceeded"
    assert refused["data"]["parent_id"] == root["task_id"]
    # a subset is fine, and the child's own entitlements narrow it further
    ok = lw.delegate(
        "fourth", lw.start("planner", "tickets.read data.read")["access_token"], "data.read"
    )
    assert ok.status_code == 200, ok.text
    # audiences cannot widen either
    wider = lw.delegate("worker", root["access_token"], "tickets.read", audience="https://other")
    assert wider.status_code == 400
    assert wider.json()["error"] == "invalid_target"


def test_chains_are_bounded_in_depth(make_world: WorldFactory) -> None:
    lw = make_world(max_delegation_depth=2)
    lw.register_all()
    token = lw.start("planner", "data.read")["access_token"]
    for name in ("worker", "helper"):
        r = lw.delegate(name, token, "data.read")
        assert r.status_code == 200, r.text
        token = r.json()["access_token"]
    too_deep = lw.delegate("fourth", token, "data.read")
    assert too_deep.status_code == 400
    assert too_deep.json()["error"] == "invalid_request"
    assert "at most 2 deep" in too_deep.json()["error_description"]
    assert lw.audit("task.refused")[-1]["data"]["reason"] == "delegation_too_deep"


def test_default_depth_is_three(lw: LifecycleWorld) -> None:
    token = lw.start("planner", "data.read")["access_token"]
    for name in ("worker", "helper", "fourth"):
        r = lw.delegate(name, token, "data.read")
        assert r.status_code == 200, r.text
        token = r.json()["access_token"]
    assert lw.delegate("fifth", token, "data.read").status_code == 400


def test_cycles_are_refused(lw: LifecycleWorld) -> None:
    root = lw.start("planner", "data.read")
    child = lw.delegate("worker", root["access_token"], "data.read").json()
    back = lw.delegate("planner", child["access_token"], "data.read")
    assert back.status_code == 400
    assert "already part of this delegation chain" in back.json()["error_description"]
    to_self = lw.delegate("planner", root["access_token"], "data.read")
    assert to_self.status_code == 400
    reasons = [r["data"]["reason"] for r in lw.audit("task.refused")]
    assert reasons == ["delegation_cycle", "delegation_cycle"]


def test_may_act_in_the_subject_token_is_honoured(lw: LifecycleWorld) -> None:
    root = lw.start("planner", "data.read")
    allowed = lw.delegate(
        "worker",
        root["access_token"],
        svid=lw.svid("worker", may_act={"sub": lw.spiffe("planner")}),
    )
    assert allowed.status_code == 200, allowed.text
    refused = lw.delegate(
        "worker",
        root["access_token"],
        svid=lw.svid("worker", may_act={"sub": lw.spiffe("helper")}),
    )
    assert refused.status_code == 400
    assert "may_act" in refused.json()["error_description"]
    wrong_issuer = lw.delegate(
        "worker",
        root["access_token"],
        svid=lw.svid("worker", may_act={"sub": lw.spiffe("planner"), "iss": "https://elsewhere"}),
    )
    assert wrong_issuer.status_code == 400
    assert lw.audit("task.refused")[-1]["data"]["reason"] == "delegation_may_act"


@pytest.mark.parametrize("how", ["revoked", "completed", "expired", "garbage", "svid"])
def test_a_dead_or_foreign_actor_token_is_refused(lw: LifecycleWorld, how: str) -> None:
    root = lw.start("planner", "data.read")
    token = root["access_token"]
    if how == "revoked":
        lw.client.post(f"/v1/tasks/{root['task_id']}/revoke", headers=lw.admin)
    elif how == "completed":
        lw.client.post(
            f"/v1/tasks/{root['task_id']}/complete", headers={"Authorization": f"Bearer {token}"}
        )
    elif how == "expired":
        lw.clock.advance(4000)
    elif how == "garbage":
        token = "not.a.token"
    else:
        token = lw.svid("planner")  # a workload identity is not a task credential
    r = lw.delegate("worker", token, "data.read", svid=lw.svid("worker"))
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_request"
    assert lw.audit("task.refused")[-1]["data"]["reason"] == "actor_invalid"


def test_malformed_delegation_requests(lw: LifecycleWorld) -> None:
    root = lw.start("planner", "data.read")
    no_type = lw.delegate("worker", root["access_token"], actor_token_type="")
    assert no_type.status_code == 400
    wrong_type = lw.delegate(
        "worker", root["access_token"], actor_token_type="urn:ietf:params:oauth:token-type:jwt"
    )
    assert wrong_type.status_code == 400
    assert "actor_token" in wrong_type.json()["error_description"]


def test_ending_a_task_ends_its_whole_subtree(lw: LifecycleWorld) -> None:
    root = lw.start("planner", "data.read tickets.read")
    child = {
        **lw.delegate("worker", root["access_token"], "data.read tickets.read").json(),
        "spiffe_id": lw.spiffe("worker"),
    }
    grandchild = {
        **lw.delegate("helper", child["access_token"], "data.read").json(),
        "spiffe_id": lw.spiffe("helper"),
    }
    sibling = {**lw.start("worker", "tickets.read"), "spiffe_id": lw.spiffe("worker")}
    assert _decide(lw, grandchild, "data.read")["decision"] is True
    r = lw.client.post(
        f"/v1/tasks/{root['task_id']}/complete",
        headers={"Authorization": f"Bearer {root['access_token']}"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "completed"
    assert body["ended_subtasks"] == [child["task_id"], grandchild["task_id"]]
    for task in (child, grandchild):
        assert _decide(lw, task, "data.read")["decision"] is False
        shown = lw.client.get(f"/v1/tasks/{task['task_id']}", headers=lw.admin).json()
        assert shown["status"] == "revoked"
        assert shown["end_reason"] == f"parent task {root['task_id']} completed"
    # an unrelated task of the same agent lives on
    assert _decide(lw, sibling, "tickets.read")["decision"] is True
    revoked_for = {r["task_id"] for r in lw.audit("task.revoked")}
    assert revoked_for == {child["task_id"], grandchild["task_id"]}
    cascade = next(r for r in lw.audit("task.revoked") if r["task_id"] == grandchild["task_id"])
    assert cascade["data"]["cascade_from"] == root["task_id"]
    assert cascade["data"]["chain"] == [lw.spiffe(n) for n in ("planner", "worker", "helper")]


def test_revoking_a_middle_task_spares_its_parent(lw: LifecycleWorld) -> None:
    root = {**lw.start("planner", "data.read data.write"), "spiffe_id": lw.spiffe("planner")}
    child = lw.delegate("worker", root["access_token"], "data.read").json()
    grandchild = {
        **lw.delegate("helper", child["access_token"], "data.read").json(),
        "spiffe_id": lw.spiffe("helper"),
    }
    r = lw.client.post(f"/v1/tasks/{child['task_id']}/revoke", headers=lw.admin)
    assert r.json()["ended_subtasks"] == [grandchild["task_id"]]
    assert _decide(lw, grandchild, "data.read")["decision"] is False
    assert _decide(lw, root, "data.write")["decision"] is True
    children = lw.client.get(f"/v1/tasks/{root['task_id']}/subtasks", headers=lw.admin).json()
    assert [t["id"] for t in children["tasks"]] == [child["task_id"]]


def test_a_subtask_renews_with_its_chain(lw: LifecycleWorld) -> None:
    root = lw.start("planner", "data.read")
    child = lw.delegate("worker", root["access_token"], "data.read").json()
    r = lw.client.post(
        "/oauth2/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": child["access_token"],
            "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
        },
    )
    assert r.status_code == 200, r.text
    _, claims = unverified(r.json()["access_token"])
    assert claims["act"] == {"sub": lw.spiffe("planner")}
    assert claims["task"] == child["task_id"]


def test_killing_the_root_agent_ends_subtasks_of_other_agents(lw: LifecycleWorld) -> None:
    root = lw.start("planner", "data.read")
    child = {
        **lw.delegate("worker", root["access_token"], "data.read").json(),
        "spiffe_id": lw.spiffe("worker"),
    }
    r = lw.client.post("/v1/agents/planner/suspend", json={"reason": "kill"}, headers=lw.admin)
    assert r.status_code == 200, r.text
    assert r.json()["tasks_ended"] == 2
    assert _decide(lw, child, "data.read")["decision"] is False
    assert (
        lw.client.get(f"/v1/tasks/{child['task_id']}", headers=lw.admin).json()["status"]
        == "revoked"
    )
