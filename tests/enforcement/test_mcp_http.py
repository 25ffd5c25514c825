"""The MCP proxy over Streamable HTTP, with real processes: the official SDK client talks to
``warden mcp-proxy --http``, which talks to the helpdesk server over HTTP and asks a real
Warden; and the same proxy embedded in-process with Warden."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from warden.demo.server import free_port

from .conftest import (
    SCOPE,
    LiveWarden,
    ThreadServer,
    needs_mcp,
    proxy_command,
    write_proxy_config,
)

pytestmark = [pytest.mark.enforcement, needs_mcp]


@contextmanager
def process(command: list[str], url: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A subprocess serving HTTP at ``url`` (any answer counts as up); stopped afterwards."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{command} exited: {log.read_text()[-2000:]}")
            try:
                httpx.get(url, timeout=0.5)
                break
            except httpx.HTTPError as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{command} did not start: {log.read_text()[-2000:]}"
                    ) from exc
                time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@asynccontextmanager
async def mcp_client(url: str, token: str) -> AsyncIterator[Any]:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=20)
    async with http, Client(streamable_http_client(url, http_client=http)) as client:
        yield client


@pytest.fixture
def http_proxy(live_warden: LiveWarden, tmp_path: Path) -> Iterator[str]:
    """helpdesk (HTTP) ← warden mcp-proxy --http ← the test; returns the proxy's /mcp URL."""
    upstream_port = free_port()
    proxy_port = live_warden.proxy_ports[0]
    upstream = f"http://127.0.0.1:{upstream_port}/mcp"
    config = write_proxy_config(
        tmp_path / "proxy.yaml",
        warden={"url": live_warden.url},
        limits={"call_timeout": 10},
        # the proxy's own credential for the upstream; the agent's never goes there
        upstreams=[
            {"name": "helpdesk", "url": upstream, "headers": {"Authorization": "Bearer proxy-own"}}
        ],
    )
    helpdesk = [sys.executable, "-m", "warden.examples.mcp_helpdesk", "--http"]
    with (
        process([*helpdesk, "--port", str(upstream_port)], upstream, tmp_path / "up.log"),
        process(
            proxy_command(config, "--http", "--port", str(proxy_port)),
            f"http://127.0.0.1:{proxy_port}/.well-known/oauth-protected-resource",
            tmp_path / "proxy.log",
        ),
    ):
        yield f"http://127.0.0.1:{proxy_port}/mcp"


def test_an_sdk_client_calls_tools_through_the_http_proxy(
    live_warden: LiveWarden, http_proxy: str
) -> None:
    from mcp import MCPError

    spiffe = live_warden.register()
    task = live_warden.start_task(spiffe, audience=http_proxy)

    async def scenario() -> None:
        async with mcp_client(http_proxy, task["access_token"]) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            assert "tickets.read" in tools and "payments.refund" not in tools
            result = await client.call_tool("tickets.read", {"ticket": "T-1042"})
            assert "INV-7731" in result.content[0].text
            with pytest.raises(MCPError) as denied:
                await client.call_tool("email.send", {"to": "x@evil.test", "subject": "s"})
            assert denied.value.code == -32001
            assert denied.value.data["policies"] == ["no-external-email"]
            whoami = await client.call_tool("whoami", {})
            assert "warden_env=[] authorization=Bearer proxy-own" in whoami.content[0].text

    anyio.run(scenario)


def test_the_http_proxy_is_an_oauth_protected_resource(
    live_warden: LiveWarden, http_proxy: str
) -> None:
    base = http_proxy.removesuffix("/mcp")
    meta = httpx.get(f"{base}/.well-known/oauth-protected-resource/mcp").json()
    assert meta["resource"] == http_proxy
    assert meta["authorization_servers"] == [live_warden.url]
    assert httpx.get(f"{base}/.well-known/oauth-protected-resource").json() == meta

    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "0"},
        },
    }
    # no credential: 401 with a pointer to the metadata
    r = httpx.post(http_proxy, json=init)
    assert r.status_code == 401
    assert (
        f'resource_metadata="{base}/.well-known/oauth-protected-resource/mcp"'
        in r.headers["www-authenticate"]
    )
    # a credential for another audience (Warden itself): refused, RFC 8707
    spiffe = live_warden.register()
    foreign = live_warden.start_task(spiffe)
    r = httpx.post(
        http_proxy, json=init, headers={"Authorization": f"Bearer {foreign['access_token']}"}
    )
    assert r.status_code == 401
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    # garbage
    r = httpx.post(http_proxy, json=init, headers={"Authorization": "Bearer not.a.jwt"})
    assert r.status_code == 401

    own = live_warden.start_task(spiffe, audience=http_proxy)
    auth = {"Authorization": f"Bearer {own['access_token']}"}
    r = httpx.post(http_proxy, json=init, headers=auth)
    assert r.status_code == 200, r.text
    session = r.headers["mcp-session-id"]
    call = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "tickets.read", "arguments": {"ticket": "T-1042"}},
    }
    # a session is required, and must exist
    assert httpx.post(http_proxy, json=call, headers=auth).status_code == 400
    assert (
        httpx.post(http_proxy, json=call, headers={**auth, "Mcp-Session-Id": "nope"}).status_code
        == 404
    )
    # another agent cannot ride this session
    other = live_warden.register("other-bot")
    other_task = live_warden.start_task(other, audience=http_proxy)
    r = httpx.post(
        http_proxy,
        json=call,
        headers={
            "Authorization": f"Bearer {other_task['access_token']}",
            "Mcp-Session-Id": session,
        },
    )
    assert r.status_code == 403
    # a foreign browser origin is refused
    r = httpx.post(
        http_proxy,
        json=call,
        headers={**auth, "Mcp-Session-Id": session, "Origin": "https://evil.test"},
    )
    assert r.status_code == 403
    ok = httpx.post(http_proxy, json=call, headers={**auth, "Mcp-Session-Id": session})
    assert ok.status_code == 200 and "INV-7731" in ok.text
    # malformed JSON is a JSON-RPC parse error
    bad = httpx.post(
        http_proxy,
        content=b"{not json",
        headers={**auth, "Mcp-Session-Id": session, "Content-Type": "application/json"},
    )
    assert bad.status_code == 400 and bad.json()["error"]["code"] == -32700
    assert httpx.delete(http_proxy, headers={**auth, "Mcp-Session-Id": session}).status_code == 204
    assert (
        httpx.post(http_proxy, json=call, headers={**auth, "Mcp-Session-Id": session}).status_code
        == 404
    )


def test_the_proxy_embedded_in_process_with_warden(live_warden: LiveWarden, tmp_path: Path) -> None:
    """No Warden URL: decisions and credential checks run in the proxy's own process."""
    from mcp import MCPError

    from warden.mcp.config import parse_proxy_config
    from warden.mcp.http import create_proxy_app, embedded_check
    from warden.mcp.proxy import Gate
    from warden.sdk.embedded import EmbeddedPDP

    port = live_warden.proxy_ports[1]
    resource = f"http://127.0.0.1:{port}/mcp"
    config = parse_proxy_config(
        {
            "warden": {"embedded": {"data_dir": str(tmp_path / "data")}},
            "upstreams": [
                {
                    "name": "helpdesk",
                    "command": [sys.executable, "-m", "warden.examples.mcp_helpdesk"],
                }
            ],
        }
    )
    check, issuer = embedded_check(live_warden.warden, resource)
    app = create_proxy_app(
        config, Gate(EmbeddedPDP(live_warden.warden)), check, resource=resource, issuer=issuer
    )
    spiffe = live_warden.register()
    task = live_warden.start_task(spiffe, audience=resource)

    async def scenario() -> None:
        async with mcp_client(resource, task["access_token"]) as client:
            result = await client.call_tool("tickets.read", {"ticket": "T-1042"})
            assert "INV-7731" in result.content[0].text
            with pytest.raises(MCPError) as denied:
                await client.call_tool("tickets.export", {})
            assert denied.value.code == -32001

    with ThreadServer(app, port):
        anyio.run(scenario)
    assert SCOPE
