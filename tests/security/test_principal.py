"""Issue 10 item 1: only a verified task credential produces an ``Agent::`` principal; the
types Warden owns and ``context.warden`` are refused from callers; PEPs are their own role."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from .conftest import EdgeWorld, make_edge_world

pytestmark = pytest.mark.security

LOOK_ALIKES = [
    "Agent",
    "AGENT",
    "aGeNt",
    "Agent ",
    " agent",
    "agent\n",
    "Ag_ent",
    "Ag-ent",
    "\u0410gent",  # Cyrillic A
    "Ag\u0435nt",  # Cyrillic e
    "\uff21gent",  # full-width A
    "Agent\u200b",  # zero-width space
    "Warden::Agent",
    "x::Agent",
    "Agent::Agent",
    "Task",
    "TASK",
    "Warden::Task",
    "Group",
    "group",
    "GROUP",
]


def _ev(subject: dict[str, Any], action: str = "reports.read", **extra: Any) -> dict[str, Any]:
    body = {
        "subject": subject,
        "action": {"name": action},
        "resource": {"type": "doc", "id": "d1"},
    }
    body.update(extra)
    return body


@pytest.mark.parametrize("type_", LOOK_ALIKES)
def test_a_plain_subject_cannot_name_a_warden_type(edge: EdgeWorld, type_: str) -> None:
    subject = {
        "type": type_,
        "id": "spiffe://example.org/agent/support-bot",
        "properties": {"risk_tier": "low"},  # what the agent policy trusts
    }
    r = edge.evaluate(_ev(subject))
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "reserved_entity_type"


@pytest.mark.parametrize("type_", ["Agent", "TASK", "group", "Warden::Task", "\u0410gent"])
def test_a_resource_cannot_name_a_warden_type(edge: EdgeWorld, type_: str) -> None:
    body = _ev({"type": "user", "id": "alice"}, "read")
    body["resource"] = {"type": type_, "id": "x"}
    r = edge.evaluate(body)
    assert r.status_code == 400 and r.json()["error"]["code"] == "reserved_entity_type"


@pytest.mark.parametrize(
    "context",
    [
        {"warden": {"scope": ["reports.read"]}},
        {"Warden": {}},
        {"WARDEN": 1},
        {"war_den": {}},
        {"ref": {"__entity": {"type": "Agent", "id": "spiffe://example.org/agent/x"}}},
        {"deep": [{"x": {"__entity": {"type": "Task", "id": "t"}}}]},
        {"implicit": {"type": "Group", "id": "support"}},
    ],
)
def test_context_cannot_carry_warden_facts_or_entities(
    edge: EdgeWorld, context: dict[str, Any]
) -> None:
    r = edge.evaluate(_ev({"type": "user", "id": "alice"}, "read", context=context))
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "reserved_entity_type"


def test_entity_references_in_properties_are_refused(edge: EdgeWorld) -> None:
    ref = {"__entity": {"type": "Agent", "id": "spiffe://example.org/agent/support-bot"}}
    for where in ("subject", "resource"):
        body = _ev({"type": "user", "id": "alice"}, "read")
        body[where] = {**body[where], "properties": {"as": ref}}
        r = edge.evaluate(body)
        assert r.status_code == 400 and r.json()["error"]["code"] == "reserved_entity_type"
    body = _ev({"type": "user", "id": "alice"}, "read")
    body["action"] = {"name": "read", "properties": {"as": ref}}
    assert edge.evaluate(body).status_code == 400


def test_deeply_nested_values_are_a_400_not_a_crash(edge: EdgeWorld) -> None:
    deep: Any = "x"
    for _ in range(200):
        deep = {"a": deep}
    r = edge.evaluate(_ev({"type": "user", "id": "alice"}, "read", context={"deep": deep}))
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_parameter"


def test_an_agent_needs_its_credential_and_properties_are_ignored(edge: EdgeWorld) -> None:
    edge.agent(risk_tier="high")
    sid = "spiffe://example.org/agent/support-bot"
    bare = edge.evaluate(_ev({"type": "agent", "id": sid, "properties": {"risk_tier": "low"}}))
    assert bare.status_code == 200 and bare.json()["decision"] is False
    assert bare.json()["context"]["reason"] == "missing_credential"
    task = edge.start_task(scope="reports.read")
    subject = {
        "type": "agent",
        "id": sid,
        "properties": {"token": task["access_token"], "risk_tier": "low"},
    }
    # the registered risk tier (high) is what Cedar sees, not the PEP's `low`
    assert edge.evaluate(_ev(subject)).json()["decision"] is False
    edge.client.patch("/v1/agents/support-bot", json={"risk_tier": "low"}, headers=edge.admin)
    assert edge.evaluate(_ev(subject)).json()["decision"] is True


def test_batch_items_with_reserved_types_are_refused_alone(edge: EdgeWorld) -> None:
    body = {
        "evaluations": [
            _ev({"type": "Agent", "id": "spiffe://example.org/agent/x"}),
            _ev({"type": "user", "id": "alice"}, "read"),
        ]
    }
    r = edge.client.post("/access/v1/evaluations", json=body)
    assert r.status_code == 200, r.text
    results = r.json()["evaluations"]
    assert results[0]["decision"] is False and results[0]["context"]["error"]["status"] == 400
    assert results[1]["decision"] is True


@pytest.mark.parametrize("kind", ["subject", "resource"])
def test_search_cannot_enumerate_warden_types(edge: EdgeWorld, kind: str) -> None:
    body: dict[str, Any] = {
        "subject": {"type": "user", "id": "alice"},
        "action": {"name": "read"},
        "resource": {"type": "doc", "id": "d1"},
    }
    body[kind] = {"type": "Agent", "id": ""}
    r = edge.client.post(f"/access/v1/search/{kind}", json=body)
    assert r.status_code == 400 and r.json()["error"]["code"] == "reserved_entity_type"


# -- the pep role ------------------------------------------------------------------------------


def _operator(edge: EdgeWorld, name: str, role: str) -> dict[str, str]:
    r = edge.client.post("/v1/operators", json={"name": name, "role": role}, headers=edge.admin)
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


@pytest.fixture
def exposed(tmp_path: Any) -> Any:
    """A Warden bound off loopback: PEPs must authenticate."""
    yield from make_edge_world(tmp_path, host="0.0.0.0")


def test_off_loopback_only_a_pep_may_ask(exposed: EdgeWorld) -> None:
    body = _ev({"type": "user", "id": "alice"}, "read")
    assert exposed.evaluate(body).status_code == 401
    for role in ("auditor", "approver"):
        headers = _operator(exposed, f"{role}-1", role)
        r = exposed.client.post("/access/v1/evaluation", json=body, headers=headers)
        assert r.status_code == 403, (role, r.text)
        r = exposed.client.post("/v1/forward-auth", headers=headers)
        assert r.status_code == 403
    pep = _operator(exposed, "gateway", "pep")
    r = exposed.client.post("/access/v1/evaluation", json=body, headers=pep)
    assert r.status_code == 200 and r.json()["decision"] is True
    # admin implies every role
    assert exposed.client.post("/access/v1/evaluation", json=body, headers=exposed.admin).is_success


def test_a_pep_account_cannot_manage(exposed: EdgeWorld) -> None:
    pep = _operator(exposed, "gateway", "pep")
    for path in ("/v1/agents", "/v1/tasks", "/v1/audit", "/v1/operators", "/v1/policies"):
        r = exposed.client.get(path, headers=pep)
        assert r.status_code == 403, (path, r.text)
    r = exposed.client.post("/v1/agents", json={"name": "x"}, headers=pep)
    assert r.status_code == 403


def test_loopback_development_still_accepts_unauthenticated_peps(edge: EdgeWorld) -> None:
    # DESIGN §4 "PEP authentication": bound to loopback with no PEP keys, no credential needed
    assert edge.evaluate(_ev({"type": "user", "id": "alice"}, "read")).json()["decision"] is True
    edge.warden.settings = replace(edge.warden.settings, pep_api_keys=("k-1",))
    assert edge.evaluate(_ev({"type": "user", "id": "alice"}, "read")).status_code == 401
