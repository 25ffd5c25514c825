"""Issue 10 items 6, 8 and 9: live tasks follow current entitlements and owners; listings feed
no behaviour counter; and the smaller edges (DPoP ``ath`` on renewal, JWT-SVID ``iat`` skew,
approval endpoints authenticate first, bound tokens need their proof, bounded
``authorization_details``)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.lifecycle.conftest import ISSUER, LifecycleWorld, make_world
from tests.lifecycle.dpop import ProofKey

from .conftest import EdgeWorld

pytestmark = pytest.mark.security

__all__ = ["lw", "make_world"]  # fixtures

TOKEN_URL = f"{ISSUER}/oauth2/token"
ACCESS = "urn:ietf:params:oauth:token-type:access_token"


@pytest.fixture
def lw(make_world: Any) -> LifecycleWorld:
    world: LifecycleWorld = make_world()
    world.register_all()
    return world


def _renew(world: Any, token: str, proof: str | None = None, **form: str) -> Any:
    return world.client.post(
        "/oauth2/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": token,
            "subject_token_type": ACCESS,
            **form,
        },
        headers={"DPoP": proof} if proof else {},
    )


def _call(world: Any, task: dict[str, Any], tool: str, **context: Any) -> dict[str, Any]:
    r = world.client.post(
        "/access/v1/evaluation",
        json={
            "subject": {
                "type": "agent",
                "id": task["spiffe_id"],
                "properties": {"token": task["access_token"]},
            },
            "action": {"name": "tools/call"},
            "resource": {"type": "tool", "id": tool},
            "context": context,
        },
    )
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


# -- item 6: effective scope = credential scope ∩ current entitlements --------------------------


def test_removing_an_entitlement_takes_it_from_live_tasks(edge: EdgeWorld) -> None:
    edge.agent()
    task = edge.start_task(scope="read_file delete_file")
    assert _call(edge, task, "read_file")["decision"] is True
    r = edge.client.patch(
        "/v1/agents/support-bot", json={"entitlements": ["delete_file"]}, headers=edge.admin
    )
    assert r.status_code == 200, r.text
    out = _call(edge, task, "read_file")
    assert out["decision"] is False and out["context"]["reason"] == "out_of_scope"
    # renewal carries only what is still entitled
    renewed = _renew(edge, task["access_token"])
    assert renewed.status_code == 200, renewed.text
    assert renewed.json()["scope"] == "delete_file"
    assert _renew(edge, task["access_token"], scope="read_file").status_code == 400
    edge.client.patch("/v1/agents/support-bot", json={"entitlements": ["GET"]}, headers=edge.admin)
    refused = _renew(edge, renewed.json()["access_token"])
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_scope"


def test_deactivating_the_owner_ends_the_agents_tasks(edge: EdgeWorld) -> None:
    edge.agent()
    task = edge.start_task(scope="read_file")
    assert _call(edge, task, "read_file")["decision"] is True
    r = edge.client.post(
        "/v1/owners/alice@example.com/deactivate", json={"reason": "left"}, headers=edge.admin
    )
    assert r.status_code == 200, r.text
    ended = edge.audit("owner.tasks_ended")
    assert [e["data"]["agents"] for e in ended] == [["support-bot"]]
    out = _call(edge, task, "read_file")
    assert out["decision"] is False and out["context"]["reason"] == "invalid_credential"
    shown = edge.client.get(f"/v1/tasks/{task['task_id']}", headers=edge.admin).json()
    assert shown["status"] == "revoked"
    assert _renew(edge, task["access_token"]).status_code == 400


# -- item 8: listings feed no behaviour counter ------------------------------------------------


def test_a_listing_of_hidden_tools_never_suspends_the_agent(edge: EdgeWorld) -> None:
    edge.agent()
    task = edge.start_task(scope="read_file")
    hidden = [f"tool_{i}" for i in range(40)]  # far more than the deny-streak threshold
    for name in hidden:
        listed = _call(edge, task, name, listing=True)
        assert listed["decision"] is False and listed["context"]["reason"] == "out_of_scope"
    assert _call(edge, task, "read_file", arguments={})["decision"] is True
    agent = edge.client.get("/v1/agents/support-bot", headers=edge.admin).json()
    assert agent["status"] == "active"
    assert edge.audit("behaviour.") == [] or all(
        r["type"] != "behaviour.suspended" for r in edge.audit("behaviour.")
    )


def test_a_call_cannot_pass_for_a_listing(edge: EdgeWorld) -> None:
    edge.agent()
    task = edge.start_task(scope="read_file")
    out = _call(edge, task, "read_file", listing=True, arguments={"path": "/etc/passwd"})
    assert out["decision"] is True
    record = edge.audit("authz.decision")[-1]["data"]
    assert "listing" not in record  # decided, and counted, as the call it is
    assert record["behaviour"]["calls_in_window"] >= 1


def test_the_mcp_mapping_gives_every_call_arguments_and_no_listing_any() -> None:
    from warden.mcp import mapping as m

    subject = {"type": "agent", "id": "spiffe://example.org/agent/a"}
    read = m.resource_request(subject, "ticket://1", "helpdesk")
    assert read["context"]["arguments"] == {}
    listed = m.for_listing(m.resource_request(subject, "ticket://1", "helpdesk"))
    assert "arguments" not in listed["context"] and listed["context"]["listing"] is True


# -- item 9 ------------------------------------------------------------------------------------


def test_a_renewal_proof_naming_another_token_is_refused(lw: LifecycleWorld) -> None:
    key = ProofKey()
    task = lw.start("worker", "tickets.read", headers={"DPoP": key.proof("POST", TOKEN_URL)})
    token = task["access_token"]
    wrong = key.proof("POST", TOKEN_URL, token="some-other-token")
    r = _renew(lw, token, wrong)
    assert r.status_code == 400 and r.json()["error"] == "invalid_dpop_proof"
    reasons = [x["data"]["reason"] for x in lw.audit("credential.renew_refused")]
    assert reasons == ["dpop_wrong_token_hash"]
    assert _renew(lw, token, key.proof("POST", TOKEN_URL, token=token)).status_code == 200
    assert _renew(lw, token, key.proof("POST", TOKEN_URL)).status_code == 200  # no ath: fine


@pytest.mark.parametrize(("ahead", "ok"), [(3600, False), (61, False), (30, True), (0, True)])
def test_jwt_svid_issued_in_the_future_is_refused(edge: EdgeWorld, ahead: int, ok: bool) -> None:
    edge.agent()
    agent = edge.client.get("/v1/agents/support-bot", headers=edge.admin).json()
    now = edge.clock.now()
    svid = edge.trust.mint(agent["spiffe_id"], "warden", ttl=7200, now=now + ahead)
    r = edge.exchange(svid, "read_file")
    assert (r.status_code == 200) is ok, r.text


def test_approval_endpoints_authenticate_before_looking_up(edge: EdgeWorld) -> None:
    from dataclasses import replace

    edge.warden.settings = replace(edge.warden.settings, host="0.0.0.0")
    for path in ("/v1/approvals/apr_nope", "/v1/approvals/apr_nope/wait?timeout=0"):
        assert edge.client.get(path).status_code == 401
        assert edge.client.get(path, headers=edge.admin).status_code == 404
    r = edge.client.post("/v1/approvals/apr_nope/approve", json={})
    assert r.status_code == 401


def test_approval_view_needs_the_dpop_proof_of_a_bound_token(lw: LifecycleWorld) -> None:
    from dataclasses import replace

    key = ProofKey()
    task = lw.start("worker", "tickets.read", headers={"DPoP": key.proof("POST", TOKEN_URL)})
    lw.warden.settings = replace(lw.warden.settings, host="0.0.0.0")
    url = "/v1/approvals/apr_nope"
    bearer = lw.client.get(url, headers={"Authorization": f"Bearer {task['access_token']}"})
    assert bearer.status_code == 401  # a bound token without its proof is no credential
    no_proof = lw.client.get(url, headers={"Authorization": f"DPoP {task['access_token']}"})
    assert no_proof.status_code == 401
    proof = key.proof("GET", f"{ISSUER}{url}", token=task["access_token"])
    proved = lw.client.get(
        url, headers={"Authorization": f"DPoP {task['access_token']}", "DPoP": proof}
    )
    assert proved.status_code == 404  # authenticated, and there is no such request


@pytest.mark.parametrize("depth", [9, 100, 1000, 5000])
def test_nested_authorization_details_are_a_400(edge: EdgeWorld, depth: int) -> None:
    edge.agent()
    agent = edge.client.get("/v1/agents/support-bot", headers=edge.admin).json()
    nested = '{"x":' * depth + "{}" + "}" * depth  # written out: json.dumps would recurse
    details = '[{"type": "agent_task", "purpose": "p", "extra": ' + nested + "}]"
    r = edge.exchange(
        edge.trust.mint(agent["spiffe_id"], "warden"),
        "read_file",
        authorization_details=details,
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_request"


def test_oversized_authorization_details_are_a_400(edge: EdgeWorld) -> None:
    edge.agent()
    agent = edge.client.get("/v1/agents/support-bot", headers=edge.admin).json()
    details = json.dumps([{"type": "agent_task", "purpose": "p", "pad": "x" * 20000}])
    r = edge.exchange(
        edge.trust.mint(agent["spiffe_id"], "warden"), "read_file", authorization_details=details
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
