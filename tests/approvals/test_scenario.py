"""The issue's scenario end to end, through two real ``warden serve`` processes.

Two replicas share one database: agents talk to replica A; the owner and the admin use the CLI
against replica B (so approvals cross replicas). A real webhook receiver on loopback records
every signed notification and verifies its HMAC.

1. An agent's destructive call is held for approval; the owner approves over the CLI; the
   retry passes; a second retry does not.
2. An unanswered request escalates (owner → security group) and finally denies.
3. An agent that suddenly calls a new destination at many times its baseline rate is first
   stepped up, then suspended, and its owner's webhook receives each step.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from tests.approvals.receiver import WebhookReceiver
from warden.cli.dev import JWT_TOKEN_TYPE, TOKEN_EXCHANGE
from warden.cli.main import app
from warden.demo.server import ServerProcess, free_port
from warden.sdk.approvals import ApprovalOutcome, wait_for_approval
from warden.tokens.svid import DevTrustDomain

pytestmark = [pytest.mark.approvals, pytest.mark.slow]

POLICIES = Path(__file__).parent / "policies"
OWNER = "alice@example.com"


def _start(tmp: Path, name: str, data_dir: Path, config: Path, policies: Path) -> ServerProcess:
    port = free_port()
    log_file = tmp / f"{name}.log"
    command = [
        sys.executable, "-m", "warden.cli.main", "serve", "--dev",
        "--host", "127.0.0.1", "--port", str(port),
        "--data-dir", str(data_dir), "--config", str(config), "--policies", str(policies),
    ]  # fmt: skip
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=tmp
        )
    server = ServerProcess(process, f"http://127.0.0.1:{port}", data_dir, log_file)
    try:
        server.wait_ready(timeout=30)
    except BaseException:
        server.stop()
        raise
    return server


@dataclass
class Cluster:
    a: ServerProcess  # the agents' replica
    b: ServerProcess  # the operators' replica
    hooks: WebhookReceiver
    runner: CliRunner
    admin_token: str

    def cli(self, *args: str, token: str | None = None) -> str:
        env = {"WARDEN_URL": self.b.url, "WARDEN_DATA_DIR": str(self.b.data_dir)}
        if token:
            env["WARDEN_TOKEN"] = token
        result = self.runner.invoke(app, list(args), env=env)
        assert result.exit_code == 0, f"warden {' '.join(args)}:\n{result.output}"
        return result.stdout

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        # the agents' replica: which agents exist reaches other replicas' memory only with
        # the cross-replica propagation of the lifecycle work, not with this feature
        r = httpx.request(
            method,
            f"{self.a.url}{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.admin_token}"},
        )
        assert r.status_code < 300, r.text
        return r.json()

    def agent(self, name: str, baseline: dict[str, Any] | None = None) -> str:
        body: dict[str, Any] = {
            "name": name,
            "owner": OWNER,
            "purpose": "keep the support queue clean",
            "entitlements": ["tickets.read", "tickets.delete", "payments.refund", "http.get"],
            "groups": ["support"],
        }
        if baseline is not None:
            body["baseline"] = baseline
        spiffe_id: str = self.admin("POST", "/v1/agents", body)["spiffe_id"]
        return spiffe_id

    def task(self, spiffe_id: str, scope: str) -> str:
        trust = DevTrustDomain.load("example.org", self.a.data_dir / "dev-trust")
        r = httpx.post(
            f"{self.a.url}/oauth2/token",
            data={
                "grant_type": TOKEN_EXCHANGE,
                "subject_token": trust.mint(spiffe_id, "warden"),
                "subject_token_type": JWT_TOKEN_TYPE,
                "scope": scope,
                "authorization_details": json.dumps(
                    [{"type": "agent_task", "purpose": "clean up", "category": "support"}]
                ),
            },
        )
        assert r.status_code == 200, r.text
        token: str = r.json()["access_token"]
        return token

    def decide(self, spiffe_id: str, token: str, tool: str, **context: Any) -> dict[str, Any]:
        r = httpx.post(
            f"{self.a.url}/access/v1/evaluation",
            json={
                "subject": {"type": "agent", "id": spiffe_id, "properties": {"token": token}},
                "action": {"name": "tools/call"},
                "resource": {"type": "tool", "id": tool},
                "context": context,
            },
        )
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES, policies)
    refunds = policies / "approvals.cedar"
    refunds.write_text(
        refunds.read_text().replace('@escalate_after("30s")', '@escalate_after("1s")')
    )
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with WebhookReceiver() as hooks:
        (tmp_path / "hook.secret").write_text(hooks.secret + "\n")
        config = tmp_path / "warden.yaml"
        config.write_text(
            json.dumps(
                {
                    "approvals": {
                        "sweep_interval": "0.2s",
                        "groups": {"security": ["carol@example.com"]},
                    },
                    "behaviour": {"rate_min_calls": 5},
                    "webhooks": {
                        "delivery": {"base_delay": "0.1s", "max_attempts": 4},
                        "endpoints": [
                            {"url": hooks.url, "secret_file": "hook.secret", "for": [OWNER]}
                        ],
                    },
                }
            )
        )
        a = _start(tmp_path, "replica-a", data_dir, config, policies)
        try:
            b = _start(tmp_path, "replica-b", data_dir, config, policies)
            try:
                admin_token = (data_dir / "admin.token").read_text().strip()
                yield Cluster(a, b, hooks, CliRunner(), admin_token)
            finally:
                b.stop()
        finally:
            a.stop()


def _waiter(
    cluster: Cluster, request_id: str, token: str
) -> tuple[threading.Thread, list[ApprovalOutcome]]:
    out: list[ApprovalOutcome] = []

    def run() -> None:
        out.append(wait_for_approval(request_id, 60, base_url=cluster.a.url, token=token, poll=5))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def test_approval_escalation_and_behaviour_end_to_end(cluster: Cluster) -> None:
    owner_token = json.loads(
        cluster.cli(
            "operators", "create", "alice", "--role", "approver", "--human", OWNER, "--json"
        )
    )["token"]

    # 1. held for approval → the owner approves over the CLI → retry passes → again held
    spiffe = cluster.agent("cleanup-bot")
    token = cluster.task(spiffe, "tickets.read tickets.delete payments.refund")
    held = cluster.decide(spiffe, token, "tickets.delete", arguments={"ticket": "T-7"})
    assert held["decision"] is False and held["context"]["reason"] == "approval_required"
    rid = held["context"]["approval_request"]["id"]
    waiter, outcome = _waiter(cluster, rid, token)

    assert rid in cluster.cli("approvals", "list", "--mine", token=owner_token)
    shown = cluster.cli("approvals", "approve", rid, "--reason", "duplicate", token=owner_token)
    assert "tickets.delete" in shown and '"ticket": "T-7"' in shown and "approved" in shown
    waiter.join(60)
    assert outcome and outcome[0].approved

    passed = cluster.decide(spiffe, token, "tickets.delete", arguments={"ticket": "T-7"})
    assert passed["decision"] is True, passed
    assert passed["context"]["approval"]["request_id"] == rid
    again = cluster.decide(spiffe, token, "tickets.delete", arguments={"ticket": "T-7"})
    assert again["decision"] is False and again["context"]["reason"] == "approval_required"
    assert again["context"]["approval_request"]["id"] != rid
    record = json.loads(cluster.cli("approvals", "show", rid, "--json"))
    assert record["used"] and record["decided_by"] == OWNER
    assert record["decision_auth"]["method"] == "operator_token"

    # 2. nobody answers: the owner's level, then the security group's, then a denial
    refund = cluster.decide(spiffe, token, "payments.refund", arguments={"invoice": "INV-9"})
    assert refund["context"]["approval_request"]["approvers"] == ["owner", "group:security"]
    rid2 = refund["context"]["approval_request"]["id"]
    waiter, outcome = _waiter(cluster, rid2, token)
    waiter.join(60)
    assert outcome and outcome[0].status == "denied"
    record = json.loads(cluster.cli("approvals", "show", rid2, "--json"))
    assert record["level"] == 2 and record["decided_by"] == "warden"
    retry = cluster.decide(spiffe, token, "payments.refund", arguments={"invoice": "INV-9"})
    assert retry["context"]["reason"] == "approval_denied"

    # 3. a new destination at many times the baseline rate: step-up, then suspension
    baseline = {"destinations": ["api.example.com"], "calls_per_minute": 2}
    rogue = cluster.agent("sync-bot", baseline=baseline)
    rogue_token = cluster.task(rogue, "http.get")
    for _ in range(3):
        ok = cluster.decide(rogue, rogue_token, "http.get", destination="api.example.com")
        assert ok["decision"] is True
    outcomes: list[str] = []
    for i in range(40):
        body = cluster.decide(
            rogue, rogue_token, "http.get", destination="exfil.example.net", arguments={"n": 1}
        )
        outcomes.append("allowed" if body["decision"] else body["context"]["reason"])
        if outcomes[-1] in ("agent_suspended", "invalid_credential"):
            break
        assert i < 39, outcomes
    assert outcomes[0] == "allowed"
    assert "approval_required" in outcomes
    cluster.hooks.wait_for("agent.suspended")
    status = json.loads(cluster.cli("agents", "show", "sync-bot", "--json"))["status"]
    assert status == "suspended"
    findings = cluster.cli("findings", "list", "--agent", "sync-bot")
    assert "exfil.example.net" in findings and "baseline" in findings

    # the owner's webhook received each step, every one signed
    events = [e["type"] for e in cluster.hooks.events()]
    for expected in (
        "approval.requested",
        "approval.approved",
        "approval.escalated",
        "approval.timed_out",
        "behaviour.finding",
        "behaviour.step_up",
        "agent.suspended",
    ):
        assert expected in events, events
    assert events.index("behaviour.step_up") < events.index("agent.suspended")
    assert all(r.verified and r.hand_verified for r in cluster.hooks.received)
    step_up = next(e for e in cluster.hooks.events("behaviour.step_up"))
    assert step_up["data"]["agent"] == "sync-bot"
