"""RFC 8693 token exchange: task credentials, errors (RFC 6749 §5.2), renewal."""

from __future__ import annotations

import json
from typing import Any

from tests.api.conftest import JWT_TYPE, TOKEN_EXCHANGE, World
from tests.api.helpers import unverified
from warden.core.model import Human, HumanStatus


def test_exchange_issues_a_task_scoped_credential(world: World) -> None:
    agent = world.register()
    svid = world.trust.mint(agent["spiffe_id"], "warden")
    r = world.exchange(svid, "tickets.read email.send payments.refund")
    assert r.status_code == 200, r.text
    body = r.json()
    assert r.headers["cache-control"] == "no-store"
    assert body["token_type"] == "Bearer"
    assert body["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    # granted = requested ∩ entitlements: payments.refund is not an entitlement
    assert body["scope"] == "email.send tickets.read"
    assert body["expires_in"] == 300
    header, claims = unverified(body["access_token"])
    assert header["alg"] == "EdDSA"
    jwks = world.client.get("/.well-known/jwks.json").json()
    assert header["kid"] in {k["kid"] for k in jwks["keys"]}
    assert claims["sub"] == agent["spiffe_id"]
    assert claims["task"] == body["task_id"]
    assert claims["scope"] == "email.send tickets.read"
    assert claims["iss"] == world.warden.settings.effective_issuer
    assert claims["exp"] - claims["iat"] == 300
    for claim in ("aud", "jti"):
        assert claims[claim]
    task = world.client.get(f"/v1/tasks/{body['task_id']}", headers=world.admin).json()
    assert task["status"] == "active"
    assert task["purpose"] == "triage the queue"
    assert task["attestation"]["method"] == "jwt_svid"
    types = [r["type"] for r in world.audit()]
    assert "task.started" in types and "credential.issued" in types
    assert body["access_token"] not in json.dumps(world.audit())


def test_credential_never_outlives_its_task(world: World) -> None:
    agent = world.register()
    svid = world.trust.mint(agent["spiffe_id"], "warden")
    r = world.client.post(
        "/oauth2/token",
        data={
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": svid,
            "subject_token_type": JWT_TYPE,
            "scope": "tickets.read",
            "authorization_details": json.dumps(
                [{"type": "agent_task", "purpose": "quick look", "ttl": 60}]
            ),
        },
    )
    assert r.status_code == 200, r.text
    _, claims = unverified(r.json()["access_token"])
    assert claims["exp"] <= r.json()["task_expires_at"]
    assert r.json()["expires_in"] <= 60


def _error(r: Any) -> str:
    assert r.status_code == 400, r.text
    assert r.headers["cache-control"] == "no-store"
    err: str = r.json()["error"]
    assert r.json()["error_description"]
    return err


def test_oauth_errors(world: World) -> None:
    agent = world.register()
    svid = world.trust.mint(agent["spiffe_id"], "warden")
    c = world.client
    assert (
        _error(c.post("/oauth2/token", data={"grant_type": "password"})) == "unsupported_grant_type"
    )
    assert _error(c.post("/oauth2/token", data={"grant_type": TOKEN_EXCHANGE})) == "invalid_request"
    assert _error(world.exchange("not-a-jwt")) == "invalid_request"
    assert _error(world.exchange(svid, "payments.refund")) == "invalid_scope"
    assert _error(world.exchange(svid, 'bad"scope')) == "invalid_scope"
    assert _error(world.exchange(svid, audience="https://elsewhere.example")) == "invalid_target"
    no_purpose = c.post(
        "/oauth2/token",
        data={
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": svid,
            "subject_token_type": JWT_TYPE,
            "scope": "tickets.read",
        },
    )
    assert _error(no_purpose) == "invalid_request"
    wrong_ct = c.post("/oauth2/token", json={"grant_type": TOKEN_EXCHANGE})
    assert _error(wrong_ct) == "invalid_request"


def test_svid_for_wrong_audience_or_unregistered_workload_is_refused(world: World) -> None:
    agent = world.register()
    assert (
        _error(world.exchange(world.trust.mint(agent["spiffe_id"], "someone-else")))
        == "invalid_request"
    )
    stranger = world.trust.mint("spiffe://example.org/agent/stranger", "warden")
    assert _error(world.exchange(stranger)) == "invalid_grant"
    refused = world.audit("task.refused")
    assert {r["data"]["reason"] for r in refused} >= {"unknown_agent"}


def test_inactive_agent_or_owner_gets_no_credential(world: World) -> None:
    agent = world.register()
    svid = world.trust.mint(agent["spiffe_id"], "warden")
    world.client.post(
        "/v1/agents/support-bot/suspend", json={"reason": "test"}, headers=world.admin
    )
    assert _error(world.exchange(svid)) == "invalid_grant"
    world.client.post("/v1/agents/support-bot/reactivate", headers=world.admin)
    assert world.exchange(svid).status_code == 200
    world.warden.store.update_human(Human(id="alice@example.com", status=HumanStatus.INACTIVE))
    assert _error(world.exchange(svid)) == "invalid_grant"


def test_renewal_keeps_the_task_and_dies_with_it(world: World) -> None:
    world.register()
    task = world.start_task()
    world.clock.advance(100)
    r = world.client.post(
        "/oauth2/token",
        data={
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": task["access_token"],
            "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
            "scope": "tickets.read",
        },
    )
    assert r.status_code == 200, r.text
    renewed = r.json()
    assert renewed["task_id"] == task["task_id"]
    assert renewed["scope"] == "tickets.read"
    _, claims = unverified(renewed["access_token"])
    assert claims["task"] == task["task_id"]
    widen = world.client.post(
        "/oauth2/token",
        data={
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": renewed["access_token"],
            "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
            "scope": "tickets.read email.send",
        },
    )
    assert _error(widen) == "invalid_scope"
    world.client.post(f"/v1/tasks/{task['task_id']}/complete", headers=world.admin)
    dead = world.client.post(
        "/oauth2/token",
        data={
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": renewed["access_token"],
            "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
        },
    )
    assert _error(dead) == "invalid_grant"


def test_authorization_server_metadata(world: World) -> None:
    meta = world.client.get("/.well-known/oauth-authorization-server").json()
    assert meta["issuer"] == world.warden.settings.effective_issuer
    assert meta["token_endpoint"].endswith("/oauth2/token")
    assert "urn:ietf:params:oauth:grant-type:token-exchange" in meta["grant_types_supported"]
    assert JWT_TYPE in meta["subject_token_types_supported"]
