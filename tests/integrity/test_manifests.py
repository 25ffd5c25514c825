"""Signed agent manifests, end to end against a live server: declared at registration,
verified at token exchange, bound into the credential, and visible to policy."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.enforcement.conftest import LiveWarden

from .conftest import PROMPT, SWAPPED_PROMPT, Signer, declaration, exchange

pytestmark = pytest.mark.integrity

SCOPE = "tickets.read payments.refund"


def _claims(token: str) -> dict[str, Any]:
    body = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return claims


def _decide(live: LiveWarden, token: str, spiffe: str, action: str) -> dict[str, Any]:
    r = httpx.post(
        f"{live.url}/access/v1/evaluation",
        json={
            "subject": {"type": "agent", "id": spiffe, "properties": {"token": token}},
            "action": {"name": action},
            "resource": {"type": "Tool", "id": action},
            "context": {},
        },
    )
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


def _refusals(live: LiveWarden) -> list[dict[str, Any]]:
    return [r for r in live.audit("task.refused") if r["data"].get("reason") == "manifest_mismatch"]


def test_a_matching_manifest_is_bound_into_the_credential_and_seen_by_policy(
    integrity_warden: LiveWarden,
) -> None:
    live = integrity_warden
    signer = Signer()
    spiffe = live.register(manifest=declaration(signer))
    r = exchange(live, spiffe, signer.manifest(spiffe), scope=SCOPE)
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    digest = _claims(token)["manifest_digest"]
    assert digest.startswith("sha256:")
    assert _decide(live, token, spiffe, "payments.refund")["decision"] is True
    # the binding survives renewal
    renewed = httpx.post(
        f"{live.url}/oauth2/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": token,
            "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
        },
    )
    assert renewed.status_code == 200, renewed.text
    assert _claims(renewed.json()["access_token"])["manifest_digest"] == digest
    started = [r for r in live.audit("task.started") if r["agent"] == "helpdesk-bot"]
    assert started[-1]["data"]["attestation"]["manifest"]["digest"] == digest


def test_policy_reads_the_model_from_the_manifest(integrity_warden: LiveWarden) -> None:
    live = integrity_warden
    signer = Signer()
    # this agent may run another model too; policy still keeps refunds to the approved ones
    spiffe = live.register(manifest=declaration(signer, models=["gpt-4o", "local-llama"]))
    r = exchange(live, spiffe, signer.manifest(spiffe, model="local-llama@3"), scope=SCOPE)
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    answer = _decide(live, token, spiffe, "payments.refund")
    assert answer["decision"] is False
    assert _decide(live, token, spiffe, "tickets.read")["decision"] is True
    # an agent without any manifest: no `context.warden.manifest`, so no refunds
    plain = live.register("plain-bot")
    token = live.start_task(plain, scope=SCOPE)["access_token"]
    assert _decide(live, token, plain, "payments.refund")["decision"] is False


def test_a_swapped_system_prompt_is_refused_and_audited(integrity_warden: LiveWarden) -> None:
    live = integrity_warden
    signer = Signer()
    spiffe = live.register(manifest=declaration(signer))
    r = exchange(live, spiffe, signer.manifest(spiffe, prompt=SWAPPED_PROMPT), scope=SCOPE)
    assert r.status_code == 400
    assert r.json()["error"] == "manifest_mismatch"
    assert "system_prompt" in r.json()["error_description"]
    (refusal,) = _refusals(live)
    (difference,) = refusal["data"]["differences"]
    assert difference["field"] == "system_prompt"
    assert difference["presented"].startswith("sha256:")
    assert difference["presented"] not in difference["accepted"]
    assert refusal["agent"] == "helpdesk-bot"


@pytest.mark.parametrize(
    "case",
    ["missing", "wrong_key", "tampered", "other_agent", "expired", "model", "garbage"],
)
def test_every_bad_manifest_is_a_manifest_mismatch(integrity_warden: LiveWarden, case: str) -> None:
    live = integrity_warden
    signer = Signer()
    spiffe = live.register(manifest=declaration(signer))
    manifest: str | None
    if case == "missing":
        manifest = None
    elif case == "wrong_key":
        manifest = Signer("ci").manifest(spiffe)  # same key id, another key
    elif case == "tampered":
        envelope = json.loads(signer.manifest(spiffe))
        payload = json.loads(base64.b64decode(envelope["payload"]))
        payload["predicate"]["model"] = {"id": "gpt-4o", "version": "evil"}
        envelope["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
        manifest = json.dumps(envelope)
    elif case == "other_agent":
        manifest = signer.manifest("spiffe://example.org/agent/someone-else")
    elif case == "expired":
        manifest = signer.manifest(spiffe, expires_at=1000)
    elif case == "model":
        manifest = signer.manifest(spiffe, model="gpt-3@1")
    else:
        manifest = "{not json"
    r = exchange(live, spiffe, manifest, scope=SCOPE)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "manifest_mismatch"
    (refusal,) = _refusals(live)
    assert refusal["data"]["differences"]


def test_a_manifest_for_an_agent_that_declares_none_is_refused(
    integrity_warden: LiveWarden,
) -> None:
    live = integrity_warden
    spiffe = live.register()
    r = exchange(live, spiffe, Signer().manifest(spiffe), scope=SCOPE)
    assert r.status_code == 400 and r.json()["error"] == "manifest_mismatch"


def test_bad_declarations_are_refused_before_any_write(integrity_warden: LiveWarden) -> None:
    live = integrity_warden
    body = {
        "name": "bad-bot",
        "owner": "alice@example.com",
        "purpose": "p",
        "entitlements": ["tickets.read"],
    }
    for manifest in (
        {"models": ["gpt-4o"]},  # no signers
        {"signers": [{"public_key": "not a key"}]},
        {"signers": [Signer().public()], "system_prompts": ["md5:abc"]},
        {"signers": [Signer().public()], "colour": "blue"},
        "a string",
    ):
        r = httpx.post(
            f"{live.url}/v1/agents", json={**body, "manifest": manifest}, headers=live.admin
        )
        assert r.status_code == 400, (manifest, r.text)
    assert httpx.get(f"{live.url}/v1/agents/bad-bot", headers=live.admin).status_code == 404
    # declare later, read back, clear
    spiffe = live.register("later-bot")
    signer = Signer()
    r = httpx.put(
        f"{live.url}/v1/agents/later-bot/manifest", json=declaration(signer), headers=live.admin
    )
    assert r.status_code == 200, r.text
    shown = httpx.get(f"{live.url}/v1/agents/later-bot/manifest", headers=live.admin).json()
    assert shown["signers"][0]["keyid"] == "ci"
    assert exchange(live, spiffe, None, scope=SCOPE).json()["error"] == "manifest_mismatch"
    assert (
        httpx.delete(f"{live.url}/v1/agents/later-bot/manifest", headers=live.admin).status_code
        == 204
    )
    assert exchange(live, spiffe, None, scope=SCOPE).status_code == 200


def test_warden_dev_manifest_signs_what_the_declaration_accepts(
    integrity_warden: LiveWarden, tmp_path: Path
) -> None:
    live = integrity_warden
    prompt = tmp_path / "prompt.txt"
    prompt.write_bytes(PROMPT)
    key = tmp_path / "signer.pem"
    cli = [sys.executable, "-m", "warden.cli.main", "dev", "manifest"]
    common = ["--key", str(key), "--model", "gpt-4o@2024-08-06", "--system-prompt", str(prompt)]
    spiffe = "spiffe://example.org/agent/cli-bot"
    declared = subprocess.run(
        [*cli, spiffe, *common, "--declaration"], capture_output=True, text=True, check=True
    )
    assert key.exists() and Path(f"{key}.pub").exists()
    live.register("cli-bot", manifest=json.loads(declared.stdout))
    signed = subprocess.run([*cli, spiffe, *common], capture_output=True, text=True, check=True)
    assert exchange(live, spiffe, signed.stdout.strip(), scope=SCOPE).status_code == 200
    prompt.write_bytes(SWAPPED_PROMPT)
    swapped = subprocess.run([*cli, spiffe, *common], capture_output=True, text=True, check=True)
    r = exchange(live, spiffe, swapped.stdout.strip(), scope=SCOPE)
    assert r.json()["error"] == "manifest_mismatch"


def test_digests_and_names_match_as_a_whole_string() -> None:
    from warden.core.manifest import check_digest, parse_declaration
    from warden.errors import InvalidParameterError

    good = "sha256:" + "a" * 64
    assert check_digest(good, "d") == good
    for bad in (good + "\n", " " + good, good.upper(), "sha256:" + "a" * 63):
        with pytest.raises(InvalidParameterError):
            check_digest(bad, "d")
    with pytest.raises(InvalidParameterError):
        parse_declaration({"signers": [{"keyid": "ci\n", "public_key": "x"}]})
