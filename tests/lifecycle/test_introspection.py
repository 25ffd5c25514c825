"""Introspection (RFC 7662) and revocation (RFC 7009): client authentication required; inactive
for anything unknown, expired or revoked; revocation takes effect at once."""

from __future__ import annotations

from typing import Any

import pytest

from tests.lifecycle.conftest import LifecycleWorld, WorldFactory
from tests.lifecycle.dpop import ProofKey

pytestmark = pytest.mark.lifecycle

PEP_KEY = "pep-key-0123456789abcdef"


@pytest.fixture
def pw(make_world: WorldFactory) -> LifecycleWorld:
    world = make_world(pep_api_keys=(PEP_KEY,))
    world.register_all()
    return world


def _introspect(lw: LifecycleWorld, token: str, auth: str | None = PEP_KEY) -> Any:
    headers = {"Authorization": f"Bearer {auth}"} if auth else {}
    return lw.client.post("/oauth2/introspect", data={"token": token}, headers=headers)


def _revoke(lw: LifecycleWorld, token: str, auth: str | None = PEP_KEY) -> Any:
    headers = {"Authorization": f"Bearer {auth}"} if auth else {}
    return lw.client.post("/oauth2/revoke", data={"token": token}, headers=headers)


def test_both_endpoints_require_client_authentication(pw: LifecycleWorld) -> None:
    token = pw.start("worker", "tickets.read")["access_token"]
    for call in (_introspect, _revoke):
        for auth in (None, "wrong-key", "wdn_op_not-an-operator"):
            r = call(pw, token, auth)
            assert r.status_code == 401, (call.__name__, auth)
            assert "WWW-Authenticate" in r.headers
    # nothing was revoked by the unauthenticated calls
    assert _introspect(pw, token).json()["active"] is True
    # an operator token works as well as a PEP API key
    operator = pw.admin["Authorization"].removeprefix("Bearer ")
    assert _introspect(pw, token, operator).json()["active"] is True


def test_loopback_is_no_excuse(lw: LifecycleWorld) -> None:
    token = lw.start("worker", "tickets.read")["access_token"]
    assert _introspect(lw, token, None).status_code == 401


def test_an_active_credential_is_described(pw: LifecycleWorld) -> None:
    root = pw.start("planner", "data.read tickets.read", on_behalf_of="bob@example.com")
    child = pw.delegate("worker", root["access_token"], "data.read").json()
    body = _introspect(pw, child["access_token"]).json()
    assert body["active"] is True
    assert body["sub"] == pw.spiffe("worker")
    assert body["client_id"] == "worker"
    assert body["scope"] == "data.read"
    assert body["task"] == child["task_id"]
    assert body["token_type"] == "Bearer"
    assert body["act"] == {"sub": pw.spiffe("planner")}
    assert body["warden"]["chain"] == [pw.spiffe("planner"), pw.spiffe("worker")]
    assert body["warden"]["on_behalf_of"] == "bob@example.com"
    assert {"iss", "aud", "exp", "iat", "jti"} <= set(body)


def test_a_bound_credential_introspects_with_its_key(pw: LifecycleWorld) -> None:
    key = ProofKey()
    task = pw.start(
        "worker",
        "tickets.read",
        headers={"DPoP": key.proof("POST", "http://testserver/oauth2/token")},
    )
    body = _introspect(pw, task["access_token"]).json()
    assert body["token_type"] == "DPoP"
    assert body["cnf"] == {"jkt": key.jkt}


def _inactive(pw: LifecycleWorld, token: str) -> None:
    r = _introspect(pw, token)
    assert r.status_code == 200
    assert r.json() == {"active": False}


def test_unknown_expired_revoked_and_ended_are_inactive(pw: LifecycleWorld) -> None:
    _inactive(pw, "garbage")
    _inactive(pw, pw.svid("worker"))  # a JWT, but not one of ours
    ended = pw.start("worker", "tickets.read")
    pw.client.post(f"/v1/tasks/{ended['task_id']}/complete", headers=pw.admin)
    _inactive(pw, ended["access_token"])
    suspended = pw.start("helper", "tickets.read")
    pw.client.post("/v1/agents/helper/suspend", json={}, headers=pw.admin)
    _inactive(pw, suspended["access_token"])
    expiring = pw.start("worker", "tickets.read")
    pw.clock.advance(306)  # past exp and the verifier's 5 s leeway
    _inactive(pw, expiring["access_token"])
    records = pw.audit("credential.introspected")
    assert [r["data"]["active"] for r in records] == [False] * 5
    assert records[-1]["data"]["detail"] == "token_expired"


def _allowed(pw: LifecycleWorld, task: dict[str, Any]) -> bool:
    r = pw.client.post(
        "/access/v1/evaluation",
        json={
            "subject": {
                "type": "agent",
                "id": task["spiffe_id"],
                "properties": {"token": task["access_token"]},
            },
            "action": {"name": "tools/call"},
            "resource": {"type": "tool", "id": "tickets.read"},
        },
        headers={"X-API-Key": PEP_KEY},
    )
    assert r.status_code == 200, r.text
    return bool(r.json()["decision"])


def test_revocation_is_immediate_and_idempotent(pw: LifecycleWorld) -> None:
    task = pw.start("worker", "tickets.read")
    token = task["access_token"]
    assert _allowed(pw, task) is True
    r = _revoke(pw, token)
    assert r.status_code == 200
    assert _allowed(pw, task) is False
    _inactive(pw, token)
    assert _revoke(pw, token).status_code == 200  # again: still 200
    assert _revoke(pw, "garbage").status_code == 200  # RFC 7009 §2.2: invalid tokens too
    revoked = pw.audit("credential.revoked")
    assert len(revoked) == 2  # recorded each time it was asked for
    assert revoked[0]["actor"] == "pep:api-key"
    assert pw.audit("credential.revoke_ignored")[-1]["data"]["reason"] == "unrecognised"
    # the task lives on: a renewal is refused (the presented credential is dead), but the
    # agent's other credentials, if any, would still work until the task ends
    task_row = pw.client.get(f"/v1/tasks/{task['task_id']}", headers=pw.admin).json()
    assert task_row["status"] == "active"


def test_bad_introspection_requests(pw: LifecycleWorld) -> None:
    headers = {"Authorization": f"Bearer {PEP_KEY}"}
    missing = pw.client.post("/oauth2/introspect", data={}, headers=headers)
    assert missing.status_code == 400
    assert missing.json()["error"] == "invalid_request"
    twice = pw.client.post("/oauth2/introspect", data={"token": ["a", "b"]}, headers=headers)
    assert twice.status_code == 400
    as_json = pw.client.post("/oauth2/introspect", json={"token": "a"}, headers=headers)
    assert as_json.status_code == 400


def test_metadata_lists_the_endpoints(pw: LifecycleWorld) -> None:
    meta = pw.client.get("/.well-known/oauth-authorization-server").json()
    assert meta["introspection_endpoint"].endswith("/oauth2/introspect")
    assert meta["revocation_endpoint"].endswith("/oauth2/revoke")
    assert "ES256" in meta["dpop_signing_alg_values_supported"]


def test_an_auditor_may_introspect_but_not_revoke(pw: LifecycleWorld) -> None:
    from warden.core.model import OperatorRole

    _, auditor = pw.warden.operators.create("eve", OperatorRole.AUDITOR, "test")
    token = pw.start("worker", "tickets.read")["access_token"]
    looked = _introspect(pw, token, auditor)
    assert looked.status_code == 200 and looked.json()["active"] is True
    assert _revoke(pw, token, auditor).status_code == 403
    assert _introspect(pw, token).json()["active"] is True
    assert pw.audit("credential.introspected")[-1]["actor"] == "pep:api-key"
