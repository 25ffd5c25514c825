"""MCP completeness over Streamable HTTP: SSE answers relay an upstream's progress and log
notifications (the helpdesk server and ``@modelcontextprotocol/server-everything`` from npm),
DPoP-bound credentials work through the HTTP proxy, and an embedded proxy takes the server's
full settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.conftest import require_program
from tests.enforcement.conftest import (
    JWT_TYPE,
    SCOPE,
    TOKEN_EXCHANGE,
    LiveWarden,
    ThreadServer,
)
from warden.demo.server import free_port
from warden.errors import InvalidParameterError
from warden.mcp.config import parse_proxy_config
from warden.mcp.http import create_proxy_app, embedded_check
from warden.mcp.proxy import Gate
from warden.sdk.embedded import EmbeddedPDP
from warden.tokens.dpop import DPoPKey

pytestmark = pytest.mark.integrity

REPO = Path(__file__).resolve().parents[2]
EVERYTHING = REPO / ".ci" / "node" / "node_modules" / ".bin" / "mcp-server-everything"


@contextmanager
def serving(
    command: list[str], url: str, log: Path, env: dict[str, str] | None = None
) -> Iterator[None]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{command} exited: {log.read_text()[-2000:]}")
            try:
                httpx.get(url, timeout=0.5)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{command} did not start") from None
                time.sleep(0.1)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@contextmanager
def http_proxy(live: LiveWarden, upstream_url: str, name: str = "up") -> Iterator[str]:
    """The proxy app (embedded decisions with the live Warden) in front of an HTTP upstream."""
    port = live.proxy_ports[2]
    resource = f"http://127.0.0.1:{port}/mcp"
    config = parse_proxy_config(
        {
            "warden": {"embedded": {"data_dir": str(live.tmp / "data")}},
            "limits": {"call_timeout": 30},
            "upstreams": [{"name": name, "url": upstream_url}],
        }
    )
    check, issuer = embedded_check(live.warden, resource)
    app = create_proxy_app(
        config, Gate(EmbeddedPDP(live.warden)), check, resource=resource, issuer=issuer
    )
    with ThreadServer(app, port):
        yield resource


@asynccontextmanager
async def sdk_client(url: str, token: str, **options: Any) -> AsyncIterator[Any]:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
    async with http, Client(streamable_http_client(url, http_client=http), **options) as c:
        yield c


def test_progress_and_log_notifications_reach_the_client_over_http(
    integrity_warden: LiveWarden, tmp_path: Path
) -> None:
    live = integrity_warden
    port = free_port()
    upstream = f"http://127.0.0.1:{port}/mcp"
    helpdesk = [sys.executable, "-m", "warden.examples.mcp_helpdesk", "--http", "--port", str(port)]
    spiffe = live.register()
    with serving(helpdesk, upstream, tmp_path / "helpdesk.log"), http_proxy(live, upstream) as url:
        task = live.start_task(spiffe, scope=f"{SCOPE} tickets.summarize", audience=url)
        progress: list[tuple[float, float | None, str | None]] = []
        logs: list[str] = []

        async def on_log(params: Any) -> None:
            logs.append(str(params.data))

        async def on_progress(done: float, total: float | None, message: str | None) -> None:
            progress.append((done, total, message))

        async def scenario() -> str:
            async with sdk_client(url, task["access_token"], logging_callback=on_log) as client:
                with warnings.catch_warnings():  # deprecated in MCP 2026-07-28, still served
                    warnings.simplefilter("ignore")
                    await client.set_logging_level("debug")
                result = await client.call_tool(
                    "tickets.summarize", {"count": 3}, progress_callback=on_progress
                )
                # a call that notifies nothing still gets a plain answer
                plain = await client.call_tool("tickets.read", {"ticket": "T-1042"})
                assert "INV-7731" in plain.content[0].text
                text: str = result.content[0].text
                return text

        assert anyio.run(scenario) == "summarized 3 tickets"
    assert [p[0] for p in progress] == [1, 2, 3] and progress[-1][1] == 3
    assert logs == [f"summarized ticket {i} of 3" for i in (1, 2, 3)]


def test_server_everything_progress_is_relayed(
    integrity_warden: LiveWarden, tmp_path: Path
) -> None:
    program = require_program(
        str(EVERYTHING) if EVERYTHING.exists() else None,
        "@modelcontextprotocol/server-everything (npm install --prefix .ci/node; see .ci/run)",
    )
    live = integrity_warden
    port = free_port()
    upstream = f"http://127.0.0.1:{port}/mcp"
    (live.tmp / "policies" / "everything.cedar").write_text(
        '@id("everything")\npermit (principal, action == Action::"trigger-long-running-operation",'
        ' resource == MCPServer::"everything");\n'
    )
    live.warden.reload_policies()
    spiffe = live.register(entitlements=["trigger-long-running-operation"])
    with (
        serving(
            [program, "streamableHttp"], upstream, tmp_path / "everything.log", {"PORT": str(port)}
        ),
        http_proxy(live, upstream, name="everything") as url,
    ):
        task = live.start_task(spiffe, scope="trigger-long-running-operation", audience=url)
        seen: list[float] = []

        async def on_progress(done: float, total: float | None, message: str | None) -> None:
            seen.append(done)

        async def scenario() -> str:
            async with sdk_client(url, task["access_token"]) as client:
                result = await client.call_tool(
                    "trigger-long-running-operation",
                    {"duration": 1, "steps": 3},  # whole numbers: Cedar holds no floats
                    progress_callback=on_progress,
                )
                text: str = result.content[0].text
                return text

        assert "Steps: 3" in anyio.run(scenario)
    assert seen == [1, 2, 3]


def _bound_task(live: LiveWarden, spiffe: str, key: DPoPKey, audience: str) -> str:
    data = {
        "grant_type": TOKEN_EXCHANGE,
        "subject_token": live.svid(spiffe),
        "subject_token_type": JWT_TYPE,
        "scope": SCOPE,
        "audience": audience,
        "authorization_details": json.dumps(
            [{"type": "agent_task", "purpose": "t", "category": "support"}]
        ),
    }
    proof = key.proof("POST", f"{live.url}/oauth2/token")
    r = httpx.post(f"{live.url}/oauth2/token", data=data, headers={"DPoP": proof})
    assert r.status_code == 200, r.text
    assert r.json()["token_type"] == "DPoP"
    token: str = r.json()["access_token"]
    return token


def test_dpop_bound_credentials_through_the_http_proxy(
    integrity_warden: LiveWarden, tmp_path: Path
) -> None:
    live = integrity_warden
    port = free_port()
    upstream = f"http://127.0.0.1:{port}/mcp"
    helpdesk = [sys.executable, "-m", "warden.examples.mcp_helpdesk", "--http", "--port", str(port)]
    spiffe = live.register()
    key = DPoPKey()
    with serving(helpdesk, upstream, tmp_path / "helpdesk.log"), http_proxy(live, upstream) as url:
        token = _bound_task(live, spiffe, key, url)
        session: dict[str, str] = {}

        def send(
            message: dict[str, Any], *, proof: str | None = None, scheme: str = "DPoP"
        ) -> httpx.Response:
            headers = {"Authorization": f"{scheme} {token}", **session}
            headers["DPoP"] = proof or key.proof("POST", url, access_token=token)
            return httpx.post(url, json=message, headers=headers, timeout=30)

        init = send(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {},
                    "clientInfo": {"name": "t", "version": "0"},
                },
            }
        )
        assert init.status_code == 200, init.text
        session["Mcp-Session-Id"] = init.headers["mcp-session-id"]
        listed = send({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        names = {t["name"] for t in listed.json()["result"]["tools"]}
        assert "tickets.read" in names and "tickets.export" not in names
        call = {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {"name": "tickets.read", "arguments": {"ticket": "T-1042"}},
        }
        proof = key.proof("POST", url, access_token=token)
        ok = send(call, proof=proof)
        assert ok.status_code == 200 and "INV-7731" in ok.text
        # the same proof again: a replay, refused at the proxy
        replay = send(call, proof=proof)
        assert replay.status_code == 401 and "DPoP" in replay.headers["www-authenticate"]
        # a bound credential as a plain bearer token (stolen, no key): refused
        assert send(call, scheme="Bearer").status_code == 401
        # a proof by another key, or for another URL: refused
        assert send(call, proof=DPoPKey().proof("POST", url, access_token=token)).status_code == 401
        wrong_url = key.proof("POST", f"{live.url}/mcp", access_token=token)
        assert send(call, proof=wrong_url).status_code == 401


def test_an_embedded_proxy_takes_the_servers_full_settings(tmp_path: Path) -> None:
    from warden.config import load_settings
    from warden.mcp.runner import embedded_settings

    server_yaml = tmp_path / "warden.yaml"
    database = f"sqlite:///{tmp_path / 'shared.db'}"
    server_yaml.write_text(
        "server:\n"
        f"  data_dir: {tmp_path / 'srv'}\n"
        f"  database_url: {database}\n"
        "enforcement:\n  risk_tiers: {low: monitor}\n"
        "approvals:\n  max_pending_per_agent: 3\n"
    )
    config = parse_proxy_config(
        {
            "warden": {"embedded": {"config": "warden.yaml"}},
            "upstreams": [{"name": "a", "command": ["x"]}],
        },
        tmp_path,
    )
    settings = embedded_settings(config)
    server = load_settings(server_yaml)
    assert settings.database_url == database
    assert settings.tier_modes == {"low": "monitor"} == server.tier_modes
    assert settings.approvals == server.approvals
    assert settings.data_dir == server.data_dir
    assert settings.serves_api is False
    # explicit keys override the server's file
    override = parse_proxy_config(
        {
            "warden": {"embedded": {"config": "warden.yaml", "database_url": "sqlite:///other.db"}},
            "upstreams": [{"name": "a", "command": ["x"]}],
        },
        tmp_path,
    )
    assert embedded_settings(override).database_url == "sqlite:///other.db"
    for bad in ({"config": "missing.yaml"}, {"colour": "blue"}):
        with pytest.raises(InvalidParameterError, match=r"warden\.embedded"):
            parse_proxy_config(
                {"warden": {"embedded": bad}, "upstreams": [{"name": "a", "command": ["x"]}]},
                tmp_path,
            )
