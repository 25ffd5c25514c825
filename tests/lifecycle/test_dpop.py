"""DPoP (RFC 9449): credentials bound to the agent's key, and proofs checked at the token
endpoint, by the PDP, and on Warden's own API — method, URI, age, token hash, key, replay."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.api.helpers import unverified
from tests.lifecycle.conftest import ISSUER, LifecycleWorld, WorldFactory
from tests.lifecycle.dpop import ProofKey
from warden.core.clock import FrozenClock
from warden.errors import DPoPProofError
from warden.tokens.dpop import DPoPVerifier, access_token_hash, normalize_htu

pytestmark = pytest.mark.lifecycle

TOKEN_URL = f"{ISSUER}/oauth2/token"
API = "https://api.example.com/orders"

# RFC 9449 §4.1 Figure 2 (also quoted in reference/standards.md §3.3)
RFC_PROOF = (
    "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0Vj"
    "NoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5"
    "VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TV"
    "CIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8l"
    "P4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg"
)
RFC_JKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"


class Ledger:
    """An in-memory proof ledger (the database one is tested in the store suite)."""

    def __init__(self) -> None:
        self.seen: dict[str, float] = {}

    def remember_proof(self, key: str, *, expires_at: float, now: float) -> bool:
        if self.seen.get(key, 0) > now:
            return False
        self.seen[key] = expires_at
        return True


def _reason(exc: pytest.ExceptionInfo[DPoPProofError]) -> str:
    return str(exc.value.detail["reason"])


def test_the_rfc_9449_example_proof() -> None:
    verifier = DPoPVerifier(FrozenClock(1562262616), Ledger())
    proof = verifier.verify(RFC_PROOF, method="POST", uri="https://server.example.com/token")
    assert proof.jkt == RFC_JKT
    with pytest.raises(DPoPProofError) as replay:
        verifier.verify(RFC_PROOF, method="POST", uri="https://server.example.com/token")
    assert _reason(replay) == "replayed"
    fresh = DPoPVerifier(FrozenClock(1562262616), Ledger())
    with pytest.raises(DPoPProofError) as method:
        fresh.verify(RFC_PROOF, method="GET", uri="https://server.example.com/token")
    assert _reason(method) == "wrong_method"
    with pytest.raises(DPoPProofError) as uri:
        fresh.verify(RFC_PROOF, method="POST", uri="https://server.example.com/other")
    assert _reason(uri) == "wrong_uri"
    late = DPoPVerifier(FrozenClock(1562262616 + 3600), Ledger())
    with pytest.raises(DPoPProofError) as stale:
        late.verify(RFC_PROOF, method="POST", uri="https://server.example.com/token")
    assert _reason(stale) == "stale"


def test_access_token_hash_and_uri_normalisation() -> None:
    assert (
        access_token_hash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU")
        == "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
    )
    assert normalize_htu("HTTPS://Server.Example.com:443/token?x=1#f") == (
        "https://server.example.com/token"
    )
    assert normalize_htu("http://h:8080") == "http://h:8080/"
    with pytest.raises(ValueError):
        normalize_htu("ftp://h/x")


@pytest.mark.parametrize(
    ("mutation", "reason"),
    [
        ({"headers": {"typ": "JWT"}}, "wrong_type"),
        ({"headers": {"alg": "HS256"}}, "bad_algorithm"),
        ({"private_member": True}, "bad_key"),
        ({"other_signer": True}, "bad_signature"),
        ({"no_jti": True}, "malformed"),
        ({"iat": time.time() - 600}, "stale"),
        ({"iat": time.time() + 600}, "stale"),
        ({"token": "another-token"}, "wrong_token_hash"),
    ],
)
def test_bad_proofs_are_refused_with_a_precise_reason(
    mutation: dict[str, Any], reason: str
) -> None:
    key = ProofKey()
    verifier = DPoPVerifier(FrozenClock(time.time()), Ledger())
    kwargs: dict[str, Any] = {"token": mutation.get("token", "the-token")}
    if "iat" in mutation:
        kwargs["iat"] = mutation["iat"]
    if "headers" in mutation and mutation["headers"].get("alg") != "HS256":
        kwargs["headers"] = mutation["headers"]
    proof = key.proof("GET", API, **kwargs)
    if mutation.get("headers", {}).get("alg") == "HS256":
        import jwt

        proof = jwt.encode(
            {"jti": "x", "htm": "GET", "htu": API, "iat": int(time.time())},
            "secret-secret-secret-secret-secret",
            algorithm="HS256",
            headers={"typ": "dpop+jwt", "jwk": key.jwk},
        )
    if mutation.get("private_member"):
        import jwt

        proof = jwt.encode(
            {"jti": "x", "htm": "GET", "htu": API, "iat": int(time.time())},
            key.private,
            algorithm="ES256",
            headers={"typ": "dpop+jwt", "jwk": {**key.jwk, "d": "AAAA"}},
        )
    if mutation.get("other_signer"):
        head, body, _ = proof.split(".")
        other = ProofKey().proof("GET", API, token="the-token").split(".")[2]
        proof = f"{head}.{body}.{other}"
    if mutation.get("no_jti"):
        import jwt

        proof = jwt.encode(
            {"htm": "GET", "htu": API, "iat": int(time.time())},
            key.private,
            algorithm="ES256",
            headers={"typ": "dpop+jwt", "jwk": key.jwk},
        )
    with pytest.raises(DPoPProofError) as exc:
        verifier.verify(proof, method="GET", uri=API, access_token="the-token", jkt=key.jkt)
    assert _reason(exc) == reason


def test_a_proof_by_another_key_than_the_binding_is_refused() -> None:
    verifier = DPoPVerifier(FrozenClock(time.time()), Ledger())
    proof = ProofKey("EdDSA").proof("GET", API, token="t")
    with pytest.raises(DPoPProofError) as exc:
        verifier.verify(proof, method="GET", uri=API, access_token="t", jkt=ProofKey().jkt)
    assert _reason(exc) == "wrong_key"


# -- through Warden -----------------------------------------------------------------------------


def _bound_task(lw: LifecycleWorld, key: ProofKey, scope: str = "tickets.read") -> dict[str, Any]:
    return lw.start("worker", scope, headers={"DPoP": key.proof("POST", TOKEN_URL)})


def _decide(
    lw: LifecycleWorld,
    task: dict[str, Any],
    proof: str | None,
    *,
    method: str = "POST",
    uri: str = API,
    http: bool = True,
) -> dict[str, Any]:
    props: dict[str, Any] = {"token": task["access_token"]}
    if proof is not None:
        props["dpop"] = proof
    body: dict[str, Any] = {
        "subject": {"type": "agent", "id": task["spiffe_id"], "properties": props},
        "action": {"name": "tools/call"},
        "resource": {"type": "tool", "id": "tickets.read"},
        "context": {"http": {"method": method, "uri": uri}} if http else {},
    }
    r = lw.client.post("/access/v1/evaluation", json=body)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def test_the_token_endpoint_binds_the_credential_to_the_proof_key(lw: LifecycleWorld) -> None:
    key = ProofKey()
    task = _bound_task(lw, key)
    assert task["token_type"] == "DPoP"
    _, claims = unverified(task["access_token"])
    assert claims["cnf"] == {"jkt": key.jkt}
    started = lw.audit("task.started")[-1]
    assert started["data"]["dpop_jkt"] == key.jkt
    unbound = lw.start("worker", "tickets.read")
    assert unbound["token_type"] == "Bearer"
    assert "cnf" not in unverified(unbound["access_token"])[1]


def test_the_pdp_checks_every_proof_of_a_bound_credential(lw: LifecycleWorld) -> None:
    key = ProofKey()
    task = _bound_task(lw, key)
    token = task["access_token"]
    good = key.proof("POST", API, token=token)
    assert _decide(lw, task, good)["decision"] is True
    cases = {
        "missing": None,
        "replayed": good,
        "wrong_uri": key.proof("POST", "https://api.example.com/admin", token=token),
        "wrong_method": key.proof("DELETE", API, token=token),
        "stale": key.proof("POST", API, token=token, iat=time.time() - 3600),
        "wrong_key": ProofKey().proof("POST", API, token=token),
        "wrong_token_hash": key.proof("POST", API, token="something-else"),
    }
    for reason, proof in cases.items():
        out = _decide(lw, task, proof)
        assert out["decision"] is False, reason
        assert out["context"]["reason"] == "invalid_dpop_proof", reason
    no_request = _decide(lw, task, key.proof("POST", API, token=token), http=False)
    assert no_request["decision"] is False
    details = [
        d["data"]["detail"].split(":")[0]
        for d in lw.audit("authz.decision")
        if d["data"].get("reason") == "invalid_dpop_proof"
    ]
    assert details == [*cases, "missing_request"]


def test_an_unbound_credential_needs_no_proof(lw: LifecycleWorld) -> None:
    task = lw.start("worker", "tickets.read")
    assert _decide(lw, task, None)["decision"] is True


def test_risk_tiers_can_require_dpop(make_world: WorldFactory) -> None:
    lw = make_world(dpop_required_tiers=("high",))
    lw.register_all()
    lw.register("vault-bot", risk_tier="high", entitlements=["tickets.read"])
    r = lw.exchange(lw.svid("vault-bot"), "tickets.read")
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_dpop_proof"
    assert lw.audit("task.refused")[-1]["data"]["reason"] == "dpop_required"
    key = ProofKey()
    bound = lw.client.post(
        "/oauth2/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": lw.svid("vault-bot"),
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "scope": "tickets.read",
            "authorization_details": '[{"type":"agent_task","purpose":"p"}]',
        },
        headers={"DPoP": key.proof("POST", TOKEN_URL)},
    )
    assert bound.status_code == 200, bound.text
    # other tiers are not affected
    assert lw.start("worker", "tickets.read")["token_type"] == "Bearer"


@pytest.mark.parametrize("problem", ["wrong_uri", "replayed", "garbage"])
def test_the_token_endpoint_refuses_bad_proofs(lw: LifecycleWorld, problem: str) -> None:
    key = ProofKey()
    proof = key.proof("POST", TOKEN_URL)
    if problem == "wrong_uri":
        proof = key.proof("POST", f"{ISSUER}/elsewhere")
    elif problem == "replayed":
        lw.start("worker", "tickets.read", headers={"DPoP": proof})
    else:
        proof = "garbage"
    r = lw.start_raw("worker", "tickets.read", headers={"DPoP": proof})
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_dpop_proof"
    assert lw.audit("task.refused")[-1]["data"]["reason"] == "dpop_invalid"


def _renew(lw: LifecycleWorld, token: str, proof: str | None) -> Any:
    return lw.client.post(
        "/oauth2/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": token,
            "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
        },
        headers={"DPoP": proof} if proof else {},
    )


def test_renewing_a_bound_credential_needs_the_same_key(lw: LifecycleWorld) -> None:
    key = ProofKey()
    token = _bound_task(lw, key)["access_token"]
    assert _renew(lw, token, None).status_code == 400
    assert _renew(lw, token, ProofKey().proof("POST", TOKEN_URL)).status_code == 400
    renewed = _renew(lw, token, key.proof("POST", TOKEN_URL))
    assert renewed.status_code == 200, renewed.text
    assert renewed.json()["token_type"] == "DPoP"
    assert unverified(renewed.json()["access_token"])[1]["cnf"] == {"jkt": key.jkt}
    reasons = [r["data"]["reason"] for r in lw.audit("credential.renew_refused")]
    assert reasons == ["dpop_missing", "dpop_key_mismatch"]


def test_a_bound_credential_on_wardens_own_api_needs_the_dpop_scheme(lw: LifecycleWorld) -> None:
    key = ProofKey()
    task = _bound_task(lw, key)
    token = task["access_token"]
    url = f"{ISSUER}/v1/tasks/{task['task_id']}/complete"
    downgrade = lw.client.post(url, headers={"Authorization": f"Bearer {token}"})
    assert downgrade.status_code == 401
    assert downgrade.headers["WWW-Authenticate"].startswith("DPoP ")
    no_proof = lw.client.post(url, headers={"Authorization": f"DPoP {token}"})
    assert no_proof.status_code == 401
    ok = lw.client.post(
        url,
        headers={"Authorization": f"DPoP {token}", "DPoP": key.proof("POST", url, token=token)},
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["status"] == "completed"


def test_a_bound_parent_signs_its_delegations(lw: LifecycleWorld) -> None:
    parent_key, child_key = ProofKey(), ProofKey("EdDSA")
    parent = lw.start("planner", "data.read", headers={"DPoP": parent_key.proof("POST", TOKEN_URL)})
    token = parent["access_token"]
    unsigned = lw.delegate("worker", token, "data.read")
    assert unsigned.status_code == 400
    assert unsigned.json()["error"] == "invalid_dpop_proof"
    assert lw.audit("task.refused")[-1]["data"]["reason"] == "actor_dpop_invalid"
    signed = lw.delegate(
        "worker",
        token,
        "data.read",
        actor_token_dpop=parent_key.proof("POST", TOKEN_URL, token=token),
        headers={"DPoP": child_key.proof("POST", TOKEN_URL)},
    )
    assert signed.status_code == 200, signed.text
    _, claims = unverified(signed.json()["access_token"])
    assert claims["cnf"] == {"jkt": child_key.jkt}  # the child is bound to its own key
