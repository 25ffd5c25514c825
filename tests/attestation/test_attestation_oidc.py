"""OIDC and Kubernetes tokens against a real issuer served over HTTP on loopback by the test,
with discovery, JWKS caching, key rotation mid-test, and outages that fail closed."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.api.conftest import TOKEN_EXCHANGE
from tests.attestation.conftest import MakeWorld
from tests.attestation.servers import LoopbackServer, loopback
from warden.attestation.oidc import TOKEN_TYPE_ID_TOKEN, OIDCAttestor, OIDCIssuer
from warden.core.clock import FrozenClock
from warden.errors import AttestationError

pytestmark = pytest.mark.attestation

JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"


class Issuer:
    """A real OIDC issuer: discovery document, JWKS, RS256 signing keys that rotate."""

    def __init__(self, server: LoopbackServer) -> None:
        self.server = server
        self.url = server.url
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.clock: FrozenClock | None = None  # tokens are issued "now" on this clock when set
        server.json(
            "/.well-known/openid-configuration",
            {"issuer": self.url, "jwks_uri": f"{self.url}/jwks"},
        )
        self.rotate("k1")

    def rotate(self, kid: str, *, keep_old: bool = False) -> None:
        if not keep_old:
            self.keys.clear()
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.current = kid
        jwks = []
        for name, key in self.keys.items():
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
            jwks.append({**jwk, "kid": name, "use": "sig", "alg": "RS256"})
        self.server.json("/jwks", {"keys": jwks})

    def token(
        self, *, kid: str | None = None, headers: dict[str, Any] | None = None, **claims: Any
    ) -> str:
        now = int(self.clock.now() if self.clock else time.time())
        body = {
            "iss": self.url,
            "sub": "repo:acme/app",
            "aud": "warden",
            "iat": now,
            "exp": now + 300,
            **claims,
        }
        body = {k: v for k, v in body.items() if v is not None}
        kid = kid or self.current
        return jwt.encode(
            body, self.keys[kid], algorithm="RS256", headers={"kid": kid, **(headers or {})}
        )


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    with loopback() as server:
        yield Issuer(server)


def attestor(issuer: Issuer, clock: FrozenClock | None = None, **options: Any) -> OIDCAttestor:
    config = OIDCIssuer(issuer=issuer.url, audience="warden", **options)
    return OIDCAttestor(config, clock=clock or FrozenClock(time.time()))


def reason(att: OIDCAttestor, token: str) -> str:
    with pytest.raises(AttestationError) as info:
        att.attest(token, TOKEN_TYPE_ID_TOKEN)
    return str(info.value.detail["reason"])


def test_verified_token_gives_selectors_for_any_claim(issuer: Issuer) -> None:
    att = attestor(issuer, selectors={"repository": "ci:repo"})
    identity = att.attest(
        issuer.token(repository="acme/app", ref="refs/heads/main", groups=["a", "b"]),
        TOKEN_TYPE_ID_TOKEN,
    )
    assert identity.method == "oidc"
    assert identity.spiffe_id is None
    assert {
        f"oidc:iss:{issuer.url}",
        "oidc:sub:repo:acme/app",
        "oidc:repository:acme/app",
        "oidc:ref:refs/heads/main",
        "oidc:groups:a",
        "oidc:groups:b",
        "ci:repo:acme/app",
    } <= identity.selectors
    assert not any(s.startswith(("oidc:exp:", "oidc:iat:")) for s in identity.selectors)
    assert issuer.server.hits == {"/.well-known/openid-configuration": 1, "/jwks": 1}


def test_key_rotation_mid_test_with_one_rate_limited_refresh(issuer: Issuer) -> None:
    clock = FrozenClock(time.time())
    att = attestor(issuer, clock, min_refresh_interval=30)
    att.attest(issuer.token(), TOKEN_TYPE_ID_TOKEN)
    issuer.rotate("k2")  # the issuer rotates: old key gone, new kid
    assert att.attest(issuer.token(), TOKEN_TYPE_ID_TOKEN).method == "oidc"
    assert issuer.server.hits["/jwks"] == 2  # exactly one refresh for the unknown kid
    issuer.rotate("k3")
    # within the rate limit a new unknown kid does not trigger another fetch: fail closed
    assert reason(att, issuer.token()) == "unknown_key"
    assert reason(att, issuer.token(kid="k3", headers={"kid": "made-up"})) == "unknown_key"
    assert issuer.server.hits["/jwks"] == 2
    clock.advance(31)
    assert att.attest(issuer.token(), TOKEN_TYPE_ID_TOKEN).method == "oidc"
    assert issuer.server.hits["/jwks"] == 3


def test_jwks_outage_serves_cached_keys_until_ttl_then_fails_closed(issuer: Issuer) -> None:
    clock = FrozenClock(time.time())
    issuer.clock = clock
    att = attestor(issuer, clock, jwks_refresh=60, jwks_ttl=600, min_refresh_interval=5)
    att.attest(issuer.token(), TOKEN_TYPE_ID_TOKEN)
    issuer.server.raw("/jwks", 503, b"down")
    clock.advance(120)  # stale: a refresh is attempted and fails, the cached key still serves
    assert att.attest(issuer.token(), TOKEN_TYPE_ID_TOKEN).method == "oidc"
    issuer.server.raw("/jwks", 200, b"<html>garbage</html>")
    clock.advance(120)
    assert att.attest(issuer.token(), TOKEN_TYPE_ID_TOKEN).method == "oidc"
    clock.advance(400)  # past the ttl of the last good fetch
    assert reason(att, issuer.token()) == "jwks_unavailable"
    issuer.rotate("k1")  # back up (same kid, new key)
    clock.advance(10)
    assert att.attest(issuer.token(), TOKEN_TYPE_ID_TOKEN).method == "oidc"


def test_slow_and_unreachable_jwks_fail_closed(issuer: Issuer) -> None:
    issuer.server.delay = 1.0
    att = attestor(issuer, timeout=0.2)
    assert reason(att, issuer.token()) == "jwks_unavailable"
    issuer.server.delay = 0
    dead = OIDCAttestor(
        OIDCIssuer(issuer="http://127.0.0.1:9", audience="warden", timeout=0.5),
        clock=FrozenClock(time.time()),
    )
    token = jwt.encode(
        {"iss": "http://127.0.0.1:9", "sub": "x", "aud": "warden", "exp": int(time.time()) + 60},
        issuer.keys["k1"],
        algorithm="RS256",
        headers={"kid": "k1"},
    )
    assert reason(dead, token) == "jwks_unavailable"


def test_bad_tokens_are_refused_with_a_reason(issuer: Issuer) -> None:
    att = attestor(issuer)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(
        {"iss": issuer.url, "sub": "x", "aud": "warden", "exp": int(time.time()) + 60},
        stranger,
        algorithm="RS256",
        headers={"kid": "k1"},
    )
    assert reason(att, forged) == "bad_signature"
    assert reason(att, issuer.token(aud="someone-else")) == "wrong_audience"
    assert reason(att, issuer.token(exp=int(time.time()) - 60)) == "expired"
    assert reason(att, issuer.token(exp=None)) == "missing_claim"
    assert reason(att, issuer.token(sub=None)) == "missing_claim"
    assert reason(att, issuer.token(nbf=int(time.time()) + 600)) == "not_yet_valid"
    assert reason(att, issuer.token(iss="https://evil.example")) == "wrong_issuer"
    assert reason(att, issuer.token(headers={"jku": "https://evil.example/jwks"})) == (
        "forbidden_header"
    )
    none_alg = jwt.encode({"iss": issuer.url, "sub": "x", "aud": "warden"}, None, algorithm="none")
    assert reason(att, none_alg) == "unsupported_algorithm"
    hs = jwt.encode(
        {"iss": issuer.url, "sub": "x", "aud": "warden"},
        "k" * 32,
        algorithm="HS256",
        headers={"kid": "k1"},
    )
    assert reason(att, hs) == "unsupported_algorithm"
    assert reason(att, "not.a.jwt") == "malformed"


def test_kubernetes_tokens_become_k8s_selectors(issuer: Issuer) -> None:
    att = attestor(issuer, kind="kubernetes")
    k8s = {
        "namespace": "payments",
        "serviceaccount": {"name": "bot", "uid": "u-1"},
        "pod": {"name": "bot-7d9", "uid": "p-1"},
    }
    identity = att.attest(issuer.token(**{"kubernetes.io": k8s}), TOKEN_TYPE_ID_TOKEN)
    assert identity.method == "k8s"
    assert {
        "k8s:ns:payments",
        "k8s:sa:bot",
        "k8s:sa-uid:u-1",
        "k8s:pod:bot-7d9",
        "k8s:pod-uid:p-1",
    } <= identity.selectors
    assert reason(att, issuer.token()) == "missing_claim"


def test_exchange_end_to_end_with_entries(issuer: Issuer, make_world: MakeWorld) -> None:
    world = make_world(
        oidc_issuers=(OIDCIssuer(issuer=issuer.url, audience="warden", kind="kubernetes"),)
    )
    world.register("support-bot")
    world.register("other-bot")
    r = world.client.post(
        "/v1/agents/support-bot/entries",
        json={"selectors": ["k8s:ns:payments", "k8s:sa:bot"]},
        headers=world.admin,
    )
    assert r.status_code == 201, r.text

    def exchange(token: str, token_type: str = TOKEN_TYPE_ID_TOKEN) -> Any:
        return world.client.post(
            "/oauth2/token",
            data={
                "grant_type": TOKEN_EXCHANGE,
                "subject_token": token,
                "subject_token_type": token_type,
                "scope": "tickets.read",
                "authorization_details": json.dumps([{"type": "agent_task", "purpose": "t"}]),
            },
        )

    k8s = {"namespace": "payments", "serviceaccount": {"name": "bot"}}
    r = exchange(issuer.token(**{"kubernetes.io": k8s}), JWT_TYPE)  # routed by `iss`
    assert r.status_code == 200, r.text
    task = world.client.get(f"/v1/tasks/{r.json()['task_id']}", headers=world.admin).json()
    assert task["attestation"]["method"] == "k8s"
    assert task["attestation"]["selectors"] == ["k8s:ns:payments", "k8s:sa:bot"]

    other = {"namespace": "payments", "serviceaccount": {"name": "intruder"}}
    assert exchange(issuer.token(**{"kubernetes.io": other})).status_code == 400
    assert world.audit("task.refused")[-1]["data"]["reason"] == "unknown_agent"

    unknown = jwt.encode(
        {
            "iss": "https://unknown.example",
            "sub": "x",
            "aud": "warden",
            "exp": int(time.time()) + 60,
        },
        issuer.keys["k1"],
        algorithm="RS256",
        headers={"kid": "k1"},
    )
    assert exchange(unknown).status_code == 400
    assert world.audit("task.refused")[-1]["data"]["reason"] == "unknown_issuer"

    # a second agent with an overlapping entry makes the identity ambiguous
    r = world.client.post(
        "/v1/agents/other-bot/entries", json={"selectors": ["k8s:ns:payments"]}, headers=world.admin
    )
    assert r.status_code == 201
    assert exchange(issuer.token(**{"kubernetes.io": k8s})).status_code == 400
    assert world.audit("task.refused")[-1]["data"]["reason"] == "ambiguous_identity"
