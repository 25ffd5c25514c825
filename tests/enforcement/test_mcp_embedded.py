"""A standalone ``warden mcp-proxy`` with Warden embedded, beside a ``warden serve`` process on
the same data folder: tasks the server starts and revokes after the proxy started reach the
proxy's own Warden (read-through and the change feed, issue 4), so its decisions follow the
server's — and the proxy, which serves no API, is not listed as a replica to check."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from warden.cli.client import admin_token_path
from warden.cli.dev import DEV_TRUST_DOMAIN, JWT_TOKEN_TYPE, TOKEN_EXCHANGE, dev_trust_dir
from warden.cli.serve import example_policies_dir
from warden.demo.server import ServerProcess, free_port, server_command
from warden.tokens.svid import DevTrustDomain

from .conftest import helpdesk_upstream, needs_mcp, proxy_command, write_proxy_config

pytestmark = [pytest.mark.enforcement, pytest.mark.slow, needs_mcp]

AGENT = {
    "name": "embedded-helpdesk",
    "owner": "bob@example.com",
    "purpose": "answer tickets through an MCP proxy with Warden embedded",
    "risk_tier": "medium",
    "entitlements": ["tickets.read"],
    "groups": ["support"],
}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """``warden serve --dev`` (SQLite in its data folder, the packaged example policies)."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    log_file = tmp_path / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
    port = free_port()
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            server_command(port, data_dir),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=tmp_path,
        )
    running = ServerProcess(process, f"http://127.0.0.1:{port}", data_dir, log_file)
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def _start_task(server: ServerProcess, admin: dict[str, str]) -> dict[str, Any]:
    domain = DevTrustDomain.load(DEV_TRUST_DOMAIN, dev_trust_dir(server.data_dir))
    form = {
        "grant_type": TOKEN_EXCHANGE,
        "subject_token": domain.mint(f"spiffe://example.org/agent/{AGENT['name']}", "warden"),
        "subject_token_type": JWT_TOKEN_TYPE,
        "scope": "tickets.read",
        "authorization_details": json.dumps(
            [{"type": "agent_task", "purpose": "answer T-1042", "category": "support"}]
        ),
    }
    r = httpx.post(f"{server.url}/oauth2/token", data=form)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_the_embedded_proxy_follows_tasks_the_server_starts_and_revokes(
    server: ServerProcess, tmp_path: Path
) -> None:
    from mcp import Client, MCPError, StdioServerParameters

    admin = {"Authorization": f"Bearer {admin_token_path(server.data_dir).read_text().strip()}"}
    r = httpx.post(f"{server.url}/v1/agents", json=AGENT, headers=admin)
    assert r.status_code == 201, r.text
    config = write_proxy_config(
        tmp_path / "proxy.yaml",
        warden={
            "embedded": {
                "data_dir": str(server.data_dir),
                "policies": str(example_policies_dir()),
                "issuer": server.url,
            }
        },
        limits={"call_timeout": 10},
        upstreams=[helpdesk_upstream()],
    )
    credential = tmp_path / "credential"  # read on every decision: written after start-up
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
    command = proxy_command(config, "--credential-file", str(credential))
    params = StdioServerParameters(command=command[0], args=command[1:], env=env)

    async def scenario() -> None:
        async with Client(params, read_timeout_seconds=20) as client:

            async def read() -> Any:
                try:
                    return await client.call_tool("tickets.read", {"ticket": "T-1042"})
                except MCPError as exc:
                    return exc

            before = await read()  # the proxy is up; no task exists yet
            assert isinstance(before, MCPError) and before.code == -32001
            assert before.data["reason"] == "missing_credential"
            # the kill switch checks every listed replica: the proxy is none (it has no API)
            replicas = httpx.get(f"{server.url}/v1/replicas", headers=admin).json()["replicas"]
            assert [r["url"] for r in replicas] == [server.url]

            task = await anyio.to_thread.run_sync(_start_task, server, admin)
            credential.write_text(task["access_token"])
            allowed = await read()
            assert not isinstance(allowed, MCPError), allowed.data
            assert "INV-7731" in allowed.content[0].text

            revoked = httpx.post(
                f"{server.url}/v1/tasks/{task['task_id']}/revoke",
                json={"reason": "compromised"},
                headers=admin,
            )
            assert revoked.status_code == 200, revoked.text
            # the server's change feed reaches the proxy's Warden (no timing asserted)
            denied = await read()
            for _ in range(100):
                if isinstance(denied, MCPError):
                    break
                await anyio.sleep(0.1)
                denied = await read()
            assert isinstance(denied, MCPError), "the proxy still allows a revoked task"
            assert denied.code == -32001 and denied.data["reason"] == "invalid_credential"

    anyio.run(scenario)
