"""``warden keys …`` and the kill switch's report, against a real ``warden serve --dev``."""

from __future__ import annotations

import json

import httpx
import pytest
from typer.testing import CliRunner

from tests.cli.test_server import _cli, _start_task
from warden.demo.server import ServerProcess

pytestmark = [pytest.mark.slow, pytest.mark.lifecycle]

DEMO_AGENT = "spiffe://example.org/agent/demo-agent"


def test_keys_rotate_and_list(runner: CliRunner, server: ServerProcess) -> None:
    before = httpx.get(f"{server.url}/.well-known/jwks.json").json()["keys"][0]["kid"]
    out = _cli(runner, server, "keys", "rotate")
    assert "new signing key" in out
    listed = json.loads(_cli(runner, server, "keys", "list", "--json"))["keys"]
    statuses = {k["kid"]: k["status"] for k in listed}
    assert statuses[before] == "published"
    current = next(k for k, s in statuses.items() if s == "current")
    jwks = [k["kid"] for k in httpx.get(f"{server.url}/.well-known/jwks.json").json()["keys"]]
    assert jwks == [current, before]
    table = _cli(runner, server, "keys", "list")
    assert current in table and "published" in table


def test_suspend_reports_the_cascade(runner: CliRunner, server: ServerProcess) -> None:
    task = _start_task(server, DEMO_AGENT)
    out = _cli(runner, server, "agents", "suspend", "demo-agent", "--reason", "test")
    assert "1 task ended" in out
    assert "cascade on the replica that ran it:" in out
    assert "seen by 1/1 replicas within" in out
    decision = httpx.post(
        f"{server.url}/access/v1/evaluation",
        json={
            "subject": {
                "type": "agent",
                "id": DEMO_AGENT,
                "properties": {"token": task["access_token"]},
            },
            "action": {"name": "tools/call"},
            "resource": {"type": "tool", "id": "tickets.read"},
        },
    ).json()
    assert decision["decision"] is False
