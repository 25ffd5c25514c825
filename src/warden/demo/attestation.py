"""Demo chapter: a plain process proves what it is over the local workload API (no SPIRE),
then a host with nothing else uses a one-time join token."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from warden.cli.dev import JWT_TOKEN_TYPE, TOKEN_EXCHANGE
from warden.demo.story import Demo, Step, StepError, jwt_claims

WORKER = {
    "name": "local-worker",
    "owner": "bob@example.com",
    "purpose": "summarise tickets from a cron job on this host",
    "risk_tier": "low",
    "entitlements": ["tickets.read", "tickets.summarise"],
}
JOIN_TOKEN_TYPE = "urn:warden:params:oauth:token-type:join-token"  # noqa: S105 - a URN


def _task_form(token: str, token_type: str) -> dict[str, str]:
    return {
        "grant_type": TOKEN_EXCHANGE,
        "subject_token": token,
        "subject_token_type": token_type,
        "scope": "tickets.read",
        "authorization_details": json.dumps(
            [{"type": "agent_task", "purpose": "summarise today's tickets", "category": "support"}]
        ),
    }


def register_worker(d: Demo) -> None:
    status, _ = d.call("POST", "/v1/agents", json_body=WORKER, admin=True, show=("name", "status"))
    d.check(status == 201, "201 Created", status)
    python = os.path.realpath(sys.executable)
    selectors = [f"unix:uid:{os.getuid()}", f"unix:path:{python}"]
    status, entry = d.call(
        "POST",
        f"/v1/agents/{WORKER['name']}/entries",
        json_body={"selectors": selectors, "description": "the demo's python on this host"},
        admin=True,
        show=("id", "selectors"),
    )
    d.check(status == 201, "an entry: this uid running this executable may act as the agent", entry)
    d.facts["entry"] = entry["id"]


def fetch_identity(d: Demo) -> None:
    socket_path = d.data_dir / "workload.sock"
    command = [sys.executable, "-m", "warden.cli.main", "agent-identity", "--socket",
               str(socket_path), "--json"]  # fmt: skip
    d.say(f"$ warden agent-identity --socket {socket_path} --json   (a separate process)")
    out = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)  # noqa: S603
    if out.returncode != 0:
        raise StepError(f"agent-identity failed: {out.stderr.strip()[:300]}")
    answer: dict[str, Any] = json.loads(out.stdout)
    d.facts["socket_svid"] = answer["svid"]
    claims = jwt_claims(answer["svid"])
    d.say(f"SVID sub {claims.get('sub')}, attested as {json.dumps(claims.get('wat'))[:160]}…")
    d.check(
        answer["entry"] == d.facts["entry"]
        and answer["spiffe_id"] == "spiffe://warden.local/agent/local-worker",
        "the kernel's answer (uid, executable) matched the entry: a JWT-SVID of warden.local",
        answer,
    )


def exchange_socket_svid(d: Demo) -> None:
    status, body = d.call(
        "POST", "/oauth2/token", form=_task_form(d.facts["socket_svid"], JWT_TOKEN_TYPE),
        show=("task_id", "scope"),
    )  # fmt: skip
    d.check(status == 200, "200 OK: a task credential, as with any SVID", body)
    status, task = d.call("GET", f"/v1/tasks/{body['task_id']}", admin=True, show=())
    att = task.get("attestation", {})
    d.say(f"task attestation: {json.dumps({k: att.get(k) for k in ('method', 'via', 'entry')})}")
    d.check(
        att.get("method") == "unix" and att.get("via") == "workload_api",
        "the task records how the process was proven (and Cedar sees it as "
        "context.warden.attestation)",
        att,
    )


def join_token(d: Demo) -> None:
    status, created = d.call(
        "POST", f"/v1/agents/{WORKER['name']}/join-tokens", json_body={"ttl": 600}, admin=True,
        show=("id", "expires_at"),
    )  # fmt: skip
    d.check(status == 201, "a join token, shown once (warden agents join-token NAME --ttl 10m)")
    token = created["token"]
    status, body = d.call("POST", "/oauth2/token", form=_task_form(token, JOIN_TOKEN_TYPE),
                          show=("task_id",))  # fmt: skip
    d.check(status == 200, "first use: a task", body)
    status, body = d.call("POST", "/oauth2/token", form=_task_form(token, JOIN_TOKEN_TYPE))
    d.check(status == 400, "the same token again is refused: used once, then dead", body)


STEPS: list[Step] = [
    ("Attestation: register a local worker and a registration entry for it", register_worker),
    ("A plain process asks the local workload API who it is", fetch_identity),
    ("It exchanges the socket's SVID for a task credential", exchange_socket_svid),
    ("A host with nothing else: a one-time join token", join_token),
]
