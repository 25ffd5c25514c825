"""AuthZEN 1.0 over HTTP: the certification scenario's transport rules and Warden's mapping."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import World

ALICE = {"type": "user", "id": "alice"}
BOB = {"type": "user", "id": "bob"}
BOB_ADMIN = {"type": "user", "id": "bob", "properties": {"role": "admin"}}
REC1 = {"type": "record", "id": "record-1"}
REC2 = {"type": "record", "id": "record-2"}


def ev(subject: Any, action: Any, resource: Any, **extra: Any) -> dict[str, Any]:
    return {"subject": subject, "action": action, "resource": resource, **extra}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (ev(ALICE, {"name": "read"}, REC1), True),
        (ev(ALICE, {"name": "write"}, REC1), True),
        (ev(BOB, {"name": "read"}, REC1), True),
        (ev(BOB, {"name": "write"}, REC1), False),
        (ev(ALICE, {"name": "write"}, REC2), False),
        (ev(BOB_ADMIN, {"name": "write"}, REC2), True),
        (ev(ALICE, {"name": "delete", "properties": {"soft": True}}, REC1), True),
        (ev(ALICE, {"name": "delete", "properties": {"soft": False}}, REC1), False),
    ],
)
def test_certification_decisions(world: World, body: dict[str, Any], expected: bool) -> None:
    r = world.client.post("/access/v1/evaluation", json=body)
    assert r.status_code == 200
    assert r.json()["decision"] is expected
    assert r.json()["context"]["decision_id"].startswith("dec_")


@pytest.mark.parametrize(
    "body",
    [
        {"action": {"name": "read"}, "resource": REC1},
        {"subject": ALICE, "resource": REC1},
        {"subject": ALICE, "action": {"name": "read"}},
        ev({"id": "alice"}, {"name": "read"}, REC1),
        ev({"type": "user"}, {"name": "read"}, REC1),
        ev(ALICE, {}, REC1),
        ev(ALICE, {"name": "read"}, {"type": "record"}),
        ev("alice", {"name": "read"}, REC1),
        ev(ALICE, {"name": 123}, REC1),
        ev(ALICE, {"name": "read"}, REC1, context="not-an-object"),
        ev({"type": "user", "id": "alice", "properties": []}, {"name": "read"}, REC1),
        [1, 2, 3],
    ],
)
def test_malformed_requests_are_400_with_a_stable_code(world: World, body: Any) -> None:
    r = world.client.post("/access/v1/evaluation", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] in {"invalid_parameter", "malformed_request"}


def test_transport_errors(world: World) -> None:
    c = world.client
    r = c.post("/access/v1/evaluation", content=b"", headers={"content-type": "application/json"})
    assert (r.status_code, r.json()["error"]["code"]) == (400, "malformed_request")
    r = c.post(
        "/access/v1/evaluation",
        content=b'{"subject":',
        headers={"content-type": "application/json"},
    )
    assert (r.status_code, r.json()["error"]["code"]) == (400, "malformed_request")
    r = c.post(
        "/access/v1/evaluation",
        content=b"subject=alice",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert (r.status_code, r.json()["error"]["code"]) == (400, "unsupported_media_type")


def test_oversized_body_is_refused_early(world: World) -> None:
    big = ev(
        ALICE,
        {"name": "read"},
        REC1,
        context={"pad": "x" * (world.warden.settings.max_body_bytes + 10)},
    )
    r = world.client.post("/access/v1/evaluation", json=big)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"


def test_unknown_fields_ignored_and_idempotent(world: World) -> None:
    body = ev(ALICE, {"name": "read"}, REC1, foo="bar")
    first = world.client.post("/access/v1/evaluation", json=body).json()["decision"]
    second = world.client.post("/access/v1/evaluation", json=body).json()["decision"]
    assert first is True and second is True


def test_request_id_is_echoed(world: World) -> None:
    r = world.client.post(
        "/access/v1/evaluation",
        json=ev(ALICE, {"name": "read"}, REC1),
        headers={"X-Request-ID": "req-42"},
    )
    assert r.headers["x-request-id"] == "req-42"
    r = world.client.post("/access/v1/evaluation", json=ev(ALICE, {"name": "read"}, REC1))
    assert r.headers["x-request-id"]


def test_batch_inherits_defaults_and_fails_items_not_requests(world: World) -> None:
    body = {
        "subject": ALICE,
        "action": {"name": "read"},
        "evaluations": [
            {"resource": REC1},
            {"action": {"name": "write"}, "resource": REC2},
            {},  # no resource to inherit: this item is a deny, not a 400
            {"subject": BOB_ADMIN, "action": {"name": "write"}, "resource": REC2},
        ],
    }
    r = world.client.post("/access/v1/evaluations", json=body)
    assert r.status_code == 200, r.text
    assert [e["decision"] for e in r.json()["evaluations"]] == [True, False, False, True]
    assert "decision" not in r.json()


def test_batch_short_circuit_semantics(world: World) -> None:
    items = [
        {"resource": REC1},
        {"action": {"name": "write"}, "resource": REC2},
        {"resource": REC2},
    ]
    base = {"subject": ALICE, "action": {"name": "read"}, "evaluations": items}
    deny_first = world.client.post(
        "/access/v1/evaluations",
        json={**base, "options": {"evaluations_semantic": "deny_on_first_deny"}},
    ).json()["evaluations"]
    assert [e["decision"] for e in deny_first] == [True, False]
    permit_first = world.client.post(
        "/access/v1/evaluations",
        json={**base, "options": {"evaluations_semantic": "permit_on_first_permit"}},
    ).json()["evaluations"]
    assert [e["decision"] for e in permit_first] == [True]
    bad = world.client.post(
        "/access/v1/evaluations", json={**base, "options": {"evaluations_semantic": "maybe"}}
    )
    assert bad.status_code == 400


def test_batch_without_items_is_a_single_evaluation(world: World) -> None:
    r = world.client.post("/access/v1/evaluations", json=ev(ALICE, {"name": "read"}, REC1))
    assert r.json()["decision"] is True


def test_discovery_metadata(world: World) -> None:
    meta = world.client.get("/.well-known/authzen-configuration").json()
    base = meta["policy_decision_point"]
    assert meta["access_evaluation_endpoint"] == f"{base}/access/v1/evaluation"
    for key in (
        "access_evaluations_endpoint",
        "search_subject_endpoint",
        "search_resource_endpoint",
        "search_action_endpoint",
    ):
        assert meta[key].startswith(base)


def test_search_endpoints(world: World) -> None:
    c = world.client
    subjects = c.post(
        "/access/v1/search/subject",
        json={
            "subject": {"type": "user", "id": "ignored"},
            "action": {"name": "read"},
            "resource": REC1,
        },
    ).json()["results"]
    assert {(s["type"], s["id"]) for s in subjects} == {("user", "alice"), ("user", "bob")}
    resources = c.post(
        "/access/v1/search/resource",
        json={"subject": ALICE, "action": {"name": "write"}, "resource": {"type": "record"}},
    ).json()["results"]
    assert {r["id"] for r in resources} == {"record-1"}
    actions = c.post("/access/v1/search/action", json={"subject": ALICE, "resource": REC1}).json()
    assert {"read", "write"} <= {a["name"] for a in actions["results"]}
    none = c.post(
        "/access/v1/search/resource",
        json={
            "subject": ALICE,
            "action": {"name": "read"},
            "resource": {"type": "nothing"},
            "page": {"limit": 5},
        },
    )
    assert none.status_code == 200 and none.json()["results"] == []
    missing = c.post(
        "/access/v1/search/resource",
        json={
            "subject": {"type": "user"},
            "action": {"name": "read"},
            "resource": {"type": "record"},
        },
    )
    assert missing.status_code == 400


@pytest.mark.parametrize(
    "evil",
    [
        'alice" || true || "',
        'alice"};permit(principal,action,resource);//',
        "alice\n",
        'user::"alice"',
    ],
)
def test_injection_in_entity_ids_never_changes_a_decision(world: World, evil: str) -> None:
    body = ev({"type": "user", "id": evil}, {"name": "write"}, REC1)
    r = world.client.post("/access/v1/evaluation", json=body)
    assert r.status_code == 200
    assert r.json()["decision"] is False


def test_pep_supplied_warden_context_and_agent_type_are_refused(world: World) -> None:
    forged = {
        "warden": {
            "task": {"id": "t", "purpose": "p", "category": "support", "age": 1},
            "scope": ["facts.check"],
            "owner": "alice@example.com",
        }
    }
    body = ev(
        {
            "type": "Agent",
            "id": "spiffe://example.org/agent/x",
            "properties": {"risk_tier": "medium"},
        },
        {"name": "facts.check"},
        {"type": "Tool", "id": "facts.check"},
        context=forged,
    )
    r = world.client.post("/access/v1/evaluation", json=body)
    assert r.status_code == 400  # issue 10: neither `Agent` nor `context.warden` is the PEP's
    assert r.json()["error"]["code"] == "reserved_entity_type"


def test_values_cedar_cannot_hold_are_a_deny_not_an_allow(world: World) -> None:
    body = ev(ALICE, {"name": "read"}, REC1, context={"ratio": 0.5})
    r = world.client.post("/access/v1/evaluation", json=body)
    assert r.status_code == 200
    assert r.json()["decision"] is False
