"""The governance commands against a real ``warden serve --dev`` process."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tests.cli.conftest import runner, server
from tests.cli.test_server import _start_task
from warden.cli.main import app
from warden.demo.server import ServerProcess

pytestmark = [pytest.mark.governance, pytest.mark.slow]

__all__ = ["runner", "server"]


def _cli(runner: CliRunner, server: ServerProcess, *args: str, code: int = 0) -> str:
    result = runner.invoke(
        app, list(args), env={"WARDEN_URL": server.url, "WARDEN_DATA_DIR": str(server.data_dir)}
    )
    assert result.exit_code == code, f"warden {' '.join(args)}:\n{result.output}"
    return result.stdout if code == 0 else result.stderr


def test_governance_commands(runner: CliRunner, server: ServerProcess) -> None:
    agent = json.loads(_cli(runner, server, "agents", "show", "demo-agent", "--json"))
    task = _start_task(server, agent["spiffe_id"])

    _cli(runner, server, "owners", "add", "bob@example.com", "--name", "Bob")
    err = _cli(runner, server, "owners", "transfer", "demo-agent", "--to", "ghost@x", code=1)
    assert "not_found" in err
    out = _cli(
        runner,
        server,
        "owners",
        "transfer",
        "demo-agent",
        "--to",
        "bob@example.com",
        "--to",
        "alice@example.com",
        "--reason",
        "team change",
    )
    assert "bob@example.com (active, primary)" in out

    campaign = json.loads(_cli(runner, server, "certify", "start", "--every", "90d", "--json"))
    assert campaign["every"] == 90 * 86400 and campaign["status"] == "open"
    err = _cli(runner, server, "certify", "start", "--every", "90d", code=1)
    assert "conflict" in err
    review = campaign["reviews"][0]["id"]
    out = _cli(runner, server, "certify", "decide", review, "reduce")
    assert "reduced" in out

    out = _cli(
        runner,
        server,
        "audit",
        "search",
        "--owner",
        "bob@example.com",
        "--type",
        "certification.",
        "--json",
    )
    assert [r["type"] for r in json.loads(out)["records"]][:1] == ["certification.review_opened"]
    story = json.loads(_cli(runner, server, "audit", "story", str(task["task_id"]), "--json"))
    assert story["task"]["agent"] == "demo-agent"
    out = _cli(runner, server, "audit", "checkpoint")
    assert "checkpoint at seq" in out
    out = _cli(runner, server, "audit", "verify")
    assert out.startswith("ok:") and "signed checkpoint(s) verified" in out
    md = _cli(runner, server, "report", "controls", "--from", "1h", "--format", "md")
    assert md.startswith("# Warden controls report") and "✅" in md
