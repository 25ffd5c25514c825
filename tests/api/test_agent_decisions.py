"""Agent mode: a task credential is verified on every decision; task end revokes it at once."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from tests.api.conftest import World
from tests.api.helpers import b64url, b64url_json, unverified


@pytest.fixture
def task(world: World) -> dict[str, Any]:
    world.register()
    return world.start_task(scope="tickets.read email.send facts.check tickets.delete")


def test_allow_out_of_scope_and_policy_deny(world: World, task: dict[str, Any]) -> None:
    tok, sid = task["access_token"], task["spiffe_id"]
    allowed = world.decide(tok, sid, "tickets.read", arguments={"ticket": 7})
    assert allowed["decision"] is True
    assert allowed["context"]["reasons"] == ["support-read"]
    outside = world.decide(tok, sid, "tickets.summarise")  # entitled, but not in this task's scope
    assert outside["decision"] is False
    assert outside["context"]["reason"] == "out_of_scope"
    forbidden = world.decide(tok, sid, "email.send", arguments={"to": "eve@evil.test"})
    assert forbidden["decision"] is False
    assert forbidden["context"]["reasons"] == ["no-external-email"]
    internal = world.decide(tok, sid, "email.send", arguments={"to": "bob@example.com"})
    assert internal["decision"] is True
    decisions = world.audit("authz.decision")
    assert [d["data"]["decision"] for d in decisions] == ["allow", "deny", "deny", "allow"]
    assert decisions[1]["data"]["reason"] == "out_of_scope"
    assert decisions[2]["data"]["reasons"] == ["no-external-email"]
    assert all(d["task_id"] == task["task_id"] for d in decisions)


def test_server_facts_reach_cedar(world: World, task: dict[str, Any]) -> None:
    assert world.decide(task["access_token"], task["spiffe_id"], "facts.check")["decision"] is True


def test_completing_a_task_revokes_its_credential_at_once(
    world: World, task: dict[str, Any]
) -> None:
    tok, sid = task["access_token"], task["spiffe_id"]
    assert world.decide(tok, sid, "tickets.read")["decision"] is True
    r = world.client.post(
        f"/v1/tasks/{task['task_id']}/complete", headers={"Authorization": f"Bearer {tok}"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "completed"
    after = world.decide(tok, sid, "tickets.read")
    assert after["decision"] is False
    assert after["context"]["reason"] == "invalid_credential"
    again = world.client.post(f"/v1/tasks/{task['task_id']}/complete", headers=world.admin)
    assert again.status_code == 409
    revoked = world.audit("credential.revoked")
    assert revoked and revoked[0]["task_id"] == task["task_id"]
    denial = world.audit("authz.decision")[-1]
    assert denial["data"]["detail"].startswith("token_revoked")


def test_a_credential_may_only_end_its_own_task(world: World, task: dict[str, Any]) -> None:
    other = world.start_task(scope="tickets.read")
    r = world.client.post(
        f"/v1/tasks/{other['task_id']}/fail",
        headers={"Authorization": f"Bearer {task['access_token']}"},
    )
    assert r.status_code == 403
    assert world.client.post(f"/v1/tasks/{other['task_id']}/fail").status_code == 401


def test_task_expiry_ends_the_task(world: World) -> None:
    world.register()
    task = world.start_task(scope="tickets.read")
    world.clock.advance(world.warden.settings.task_ttl + 1)
    assert world.warden.tasks.sweep_expired() == 1
    assert (
        world.decide(task["access_token"], task["spiffe_id"], "tickets.read")["decision"] is False
    )
    status = world.client.get(f"/v1/tasks/{task['task_id']}", headers=world.admin).json()["status"]
    assert status == "expired"


def test_suspending_an_agent_ends_its_tasks(world: World, task: dict[str, Any]) -> None:
    r = world.client.post(
        "/v1/agents/support-bot/suspend", json={"reason": "incident"}, headers=world.admin
    )
    assert r.status_code == 200
    assert r.json()["tasks_ended"] == 1
    decision = world.decide(task["access_token"], task["spiffe_id"], "tickets.read")
    assert decision["decision"] is False


# -- RFC 8725: every forged, expired or misused credential is a deny ---------------------------


def _sign(world: World, claims: dict[str, Any], **headers: Any) -> str:
    key = world.warden.keys.current()
    return jwt.encode(
        claims,
        key.private_key,
        algorithm="EdDSA",
        headers={"kid": key.kid, "typ": "at+jwt", **headers},
    )


def _claims(world: World, task: dict[str, Any], **over: Any) -> dict[str, Any]:
    _, claims = unverified(task["access_token"])
    claims.update(over)
    return claims


def forged_tokens(world: World, task: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """name -> (token, precise audit code expected)."""
    tok = task["access_token"]
    head, body, sig = tok.split(".")
    now = int(world.clock.now())
    pub = (
        world.warden.keys.current()
        .private_key.public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    h_hmac = b64url_json({"alg": "HS256", "kid": world.warden.keys.current().kid, "typ": "at+jwt"})
    mac = hmac.new(pub, f"{h_hmac}.{body}".encode(), hashlib.sha256).digest()
    return {
        "alg_none": (
            f"{b64url_json({'alg': 'none', 'typ': 'at+jwt'})}.{body}.",
            "token_algorithm_not_allowed",
        ),
        "hmac_with_public_key": (f"{h_hmac}.{body}.{b64url(mac)}", "token_algorithm_not_allowed"),
        "jku_header": (
            _sign(world, _claims(world, task), jku="https://evil.test/jwks"),
            "token_forbidden_header",
        ),
        "x5u_header": (
            _sign(world, _claims(world, task), x5u="https://evil.test/cert"),
            "token_forbidden_header",
        ),
        "embedded_jwk": (
            _sign(world, _claims(world, task), jwk={"kty": "OKP", "crv": "Ed25519", "x": "AA"}),
            "token_forbidden_header",
        ),
        "unknown_kid": (
            jwt.encode(
                _claims(world, task),
                world.warden.keys.current().private_key,
                algorithm="EdDSA",
                headers={"kid": "nope"},
            ),
            "token_key_not_found",
        ),
        "expired": (
            _sign(world, _claims(world, task, exp=now - 100, iat=now - 400, nbf=now - 400)),
            "token_expired",
        ),
        "not_yet_valid": (
            _sign(world, _claims(world, task, nbf=now + 600, iat=now + 600, exp=now + 900)),
            "token_not_yet_valid",
        ),
        "wrong_audience": (
            _sign(world, _claims(world, task, aud="https://other.example")),
            "token_audience_mismatch",
        ),
        "wrong_issuer": (
            _sign(world, _claims(world, task, iss="https://evil.test")),
            "token_issuer_mismatch",
        ),
        "tampered_payload": (
            f"{head}.{b64url_json(_claims(world, task, scope='tickets.read x.y'))}.{sig}",
            "token_invalid",
        ),
        "tampered_signature": (f"{head}.{body}.{sig[:-4]}AAAA", "token_invalid"),
        "oversized": (f"{head}.{body}{'A' * 9000}.{sig}", "token_too_large"),
        "garbage": ("not.a.token", "token_invalid"),
    }


CASES = [
    "alg_none",
    "hmac_with_public_key",
    "jku_header",
    "x5u_header",
    "embedded_jwk",
    "unknown_kid",
    "expired",
    "not_yet_valid",
    "wrong_audience",
    "wrong_issuer",
    "tampered_payload",
    "tampered_signature",
    "oversized",
    "garbage",
]


@pytest.mark.parametrize("case", CASES)
def test_forged_credentials_are_denied_opaquely_and_audited_precisely(
    world: World, task: dict[str, Any], case: str
) -> None:
    token, code = forged_tokens(world, task)[case]
    decision = world.decide(token, task["spiffe_id"], "tickets.read")
    assert decision["decision"] is False
    # opaque, and in the one shape of every decision: no policy ran, so no policy ids
    assert decision["context"] == {
        "decision_id": decision["context"]["decision_id"],
        "reason": "invalid_credential",
        "reasons": [],
    }
    record = world.audit("authz.decision")[-1]
    assert record["data"]["reason"] == "invalid_credential"
    assert record["data"]["detail"].split(":")[0] == code
    assert token not in str(record)


def test_credential_of_agent_a_presented_as_agent_b(world: World, task: dict[str, Any]) -> None:
    world.register("other-bot")
    other = world.client.get("/v1/agents/other-bot", headers=world.admin).json()
    decision = world.decide(task["access_token"], other["spiffe_id"], "tickets.read")
    assert decision["decision"] is False
    assert decision["context"]["reason"] == "invalid_credential"


def test_missing_credential_is_a_deny(world: World, task: dict[str, Any]) -> None:
    r = world.client.post(
        "/access/v1/evaluation",
        json={
            "subject": {"type": "agent", "id": task["spiffe_id"]},
            "action": {"name": "tools/call"},
            "resource": {"type": "tool", "id": "tickets.read"},
        },
    )
    assert r.json()["decision"] is False
    assert r.json()["context"]["reason"] == "missing_credential"


def test_pep_cannot_smuggle_warden_facts(world: World, task: dict[str, Any]) -> None:
    # context.warden is Warden's own: a PEP that sends it is refused outright (issue 10)
    for forged in ({"task": {"category": "other"}}, {"owner": "alice@example.com"}, {}):
        r = world.client.post(
            "/access/v1/evaluation",
            json={
                "subject": {
                    "type": "agent",
                    "id": task["spiffe_id"],
                    "properties": {"token": task["access_token"]},
                },
                "action": {"name": "tools/call"},
                "resource": {"type": "tool", "id": "facts.check"},
                "context": {"warden": forged},
            },
        )
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == "reserved_entity_type"
    assert world.decide(task["access_token"], task["spiffe_id"], "facts.check")["decision"]
