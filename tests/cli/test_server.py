"""CLI commands against a real ``warden serve --dev`` process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from warden.cli.dev import JWT_TOKEN_TYPE, TOKEN_EXCHANGE
from warden.cli.main import app
from warden.demo.server import ServerProcess
from warden.tokens.svid import DevTrustDomain

pytestmark = pytest.mark.slow


def _cli(runner: CliRunner, server: ServerProcess, *args: str) -> str:
    result = runner.invoke(
        app, list(args), env={"WARDEN_URL": server.url, "WARDEN_DATA_DIR": str(server.data_dir)}
    )
    assert result.exit_code == 0, f"warden {' '.join(args)}:\n{result.output}"
    return result.stdout


def _start_task(server: ServerProcess, spiffe_id: str) -> dict[str, object]:
    trust = DevTrustDomain.load("example.org", server.data_dir / "dev-trust")
    response = httpx.post(
        f"{server.url}/oauth2/token",
        data={
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": trust.mint(spiffe_id, "warden"),
            "subject_token_type": JWT_TOKEN_TYPE,
            "scope": "tickets.read",
            "authorization_details": json.dumps(
                [{"type": "agent_task", "purpose": "triage", "category": "support"}]
            ),
        },
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_serve_dev_banner_and_seed(runner: CliRunner, server: ServerProcess) -> None:
    log = server.log_tail(200)
    assert f"Warden is running at {server.url}" in log
    assert f"{server.url}/docs" in log
    assert f"export WARDEN_TOKEN=$(cat {server.data_dir / 'admin.token'})" in log
    assert "warden dev svid demo-agent" in log
    assert "curl -s" in log and "/oauth2/token" in log
    assert "example.org" in log

    out = _cli(runner, server, "agents", "show", "demo-agent", "--json")
    agent = json.loads(out)
    assert agent["owner"] == "alice@example.com"
    assert agent["groups"] == ["support"]
    assert agent["spiffe_id"] == "spiffe://example.org/agent/demo-agent"


def test_agent_lifecycle_through_the_cli(runner: CliRunner, server: ServerProcess) -> None:
    out = _cli(
        runner,
        server,
        "agents",
        "register",
        "invoice-bot",
        "--owner",
        "bob@example.com",
        "--purpose",
        "answer invoice questions",
        "--risk-tier",
        "high",
        "-e",
        "tickets.read",
        "-e",
        "email.send",
        "--group",
        "support",
    )
    assert "registered agent invoice-bot as spiffe://example.org/agent/invoice-bot" in out

    out = _cli(runner, server, "agents", "list")
    assert "invoice-bot" in out and "demo-agent" in out and "bob@example.com" in out
    listed = json.loads(
        _cli(runner, server, "agents", "list", "--owner", "bob@example.com", "--json")
    )
    assert [a["name"] for a in listed["agents"]] == ["invoice-bot"]

    out = _cli(runner, server, "agents", "show", "invoice-bot")
    assert "high" in out and "email.send tickets.read" in out

    out = _cli(runner, server, "agents", "update", "invoice-bot", "--purpose", "invoices only")
    assert "invoices only" in out

    task = _start_task(server, "spiffe://example.org/agent/invoice-bot")
    out = _cli(runner, server, "tasks", "list", "--agent", "invoice-bot")
    assert str(task["task_id"]) in out and "active" in out

    out = _cli(runner, server, "agents", "suspend", "invoice-bot", "--reason", "drill")
    assert "suspended agent invoice-bot: 1 task ended" in out
    assert " ms" in out

    tasks = json.loads(_cli(runner, server, "tasks", "list", "--json"))
    mine = [t for t in tasks["tasks"] if t["id"] == task["task_id"]]
    assert mine and mine[0]["status"] == "revoked"

    out = _cli(runner, server, "agents", "reactivate", "invoice-bot")
    assert "reactivated agent invoice-bot (status active)" in out

    out = _cli(runner, server, "audit", "list", "--agent", "invoice-bot")
    assert "agent.registered" in out and "agent.suspended" in out


def test_task_commands_and_errors(runner: CliRunner, server: ServerProcess) -> None:
    task = _start_task(server, "spiffe://example.org/agent/demo-agent")
    task_id = str(task["task_id"])
    out = _cli(runner, server, "tasks", "show", task_id)
    assert "demo-agent" in out and "tickets.read" in out
    out = _cli(runner, server, "tasks", "complete", task_id)
    assert f"task {task_id} of agent demo-agent is now completed" in out

    env = {"WARDEN_URL": server.url, "WARDEN_DATA_DIR": str(server.data_dir)}
    again = runner.invoke(app, ["tasks", "complete", task_id], env=env)
    assert again.exit_code == 1
    assert again.stderr.startswith("error: conflict:")

    missing = runner.invoke(app, ["agents", "show", "nobody"], env=env)
    assert missing.exit_code == 1
    assert missing.stderr.strip() == "error: not_found: agent `nobody` not found"

    bad_token = runner.invoke(app, ["agents", "list"], env={**env, "WARDEN_TOKEN": "wdn_op_bad"})
    assert bad_token.exit_code == 1
    assert "error: unauthenticated:" in bad_token.stderr

    svid = runner.invoke(app, ["dev", "svid", "demo-agent"], env=env)
    assert svid.exit_code == 0, svid.output
    assert svid.stdout.count(".") == 2

    out = _cli(runner, server, "policies", "mode", "--agent", "demo-agent", "monitor")
    assert "agent demo-agent now runs in monitor mode" in out
    out = _cli(runner, server, "reports", "monitor", "--since", "1h")
    assert "nothing" in out or "would have been denied" in out

    # the local verify reads the same database the server writes
    out = _cli(runner, server, "audit", "verify")
    assert out.startswith("ok: ")


def test_warden_script_entry_point() -> None:
    script = Path(sys.executable).parent / "warden"
    result = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0
    assert result.stdout.strip() == "warden 0.1.0"
