"""The MCP proxy over stdio, with real processes: the official MCP SDK client starts
``warden mcp-proxy``, which starts the helpdesk MCP server and asks a real Warden server."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from .conftest import (
    ENTITLEMENTS,
    SCOPE,
    LiveWarden,
    helpdesk_upstream,
    needs_mcp,
    proxy_command,
    write_proxy_config,
)

pytestmark = [pytest.mark.enforcement, needs_mcp]


@asynccontextmanager
async def proxied(config: Path, token: str) -> AsyncIterator[Any]:
    from mcp import Client, StdioServerParameters

    env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
    env["WARDEN_TASK_CREDENTIAL"] = token
    command = proxy_command(config)
    params = StdioServerParameters(command=command[0], args=command[1:], env=env)
    async with Client(params, read_timeout_seconds=20) as client:
        yield client


def agent_task(live: LiveWarden) -> str:
    """A fresh agent with a live task; its credential."""
    token: str = live.start_task(live.register())["access_token"]
    return token


def config_for(live: LiveWarden, tmp: Path, **limits: Any) -> Path:
    return write_proxy_config(
        tmp / "proxy.yaml",
        warden={"url": live.url},
        limits={"call_timeout": 10, **limits},
        upstreams=[helpdesk_upstream()],
    )


def run(coro: Any) -> Any:
    return anyio.run(coro)


def error_of(excinfo: pytest.ExceptionInfo[Any]) -> tuple[int, str, Any]:
    err = excinfo.value
    return err.code, err.message, err.data


def test_tool_calls_are_allowed_filtered_and_denied(
    live_warden: LiveWarden, tmp_path: Path
) -> None:
    from mcp import MCPError

    token = agent_task(live_warden)
    config = config_for(live_warden, tmp_path)

    async def scenario() -> None:
        async with proxied(config, token) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            # in scope and permitted, or permitted with the right arguments, stay visible
            assert {"tickets.read", "email.send", "whoami"} <= tools
            # outside the task's scope, or forbidden outright: hidden
            assert "payments.refund" not in tools
            assert "tickets.export" not in tools

            result = await client.call_tool("tickets.read", {"ticket": "T-1042"})
            assert not result.is_error
            assert "INV-7731" in result.content[0].text

            ok = await client.call_tool("email.send", {"to": "carol@example.com", "subject": "hi"})
            assert "queued email to carol@example.com" in ok.content[0].text

            with pytest.raises(MCPError) as denied:
                await client.call_tool("email.send", {"to": "x@evil.test", "subject": "hi"})
            code, message, data = error_of(denied)
            assert code == -32001
            assert "no-external-email" in message
            assert data["reason"] == "policy" and data["policies"] == ["no-external-email"]
            assert data["decision_id"].startswith("dec_")

            with pytest.raises(MCPError) as scope:
                await client.call_tool("payments.refund", {"invoice": "INV-7731", "amount": 5})
            code, message, data = error_of(scope)
            assert code == -32001 and data["reason"] == "out_of_scope"
            assert "outside this task's scope" in message

            with pytest.raises(MCPError) as forbidden:
                await client.call_tool("tickets.export", {})
            assert error_of(forbidden)[2]["policies"] == ["no-bulk-export"]

    run(scenario)
    # every call was decided, and the deny of the external email is on the record
    records = live_warden.audit()
    denies = [r for r in records if r["data"]["decision"] == "deny"]
    assert any(r["data"].get("reasons") == ["no-external-email"] for r in denies)
    assert any(r["data"].get("reason") == "out_of_scope" for r in denies)


def test_a_call_held_for_approval_passes_once_the_owner_approves(
    live_warden: LiveWarden, tmp_path: Path
) -> None:
    from mcp import MCPError

    live = live_warden
    spiffe_id = live.register("deleter", entitlements=[*ENTITLEMENTS, "tickets.delete"])
    token = live.start_task(spiffe_id, scope=f"{SCOPE} tickets.delete")["access_token"]
    r = httpx.post(
        f"{live.url}/v1/operators",
        json={"name": "alice", "role": "approver", "human": "alice@example.com"},
        headers=live.admin,
    )
    assert r.status_code == 201, r.text
    alice = {"Authorization": f"Bearer {r.json()['token']}"}
    config = config_for(live, tmp_path)
    delete = {"ticket": "T-1043", "reason": "duplicate"}

    async def scenario() -> None:
        async with proxied(config, token) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            assert "tickets.delete" in tools  # callable once approved
            with pytest.raises(MCPError) as held:
                await client.call_tool("tickets.delete", delete)
            code, message, data = error_of(held)
            assert code == -32001 and data["reason"] == "approval_required"
            assert data["policies"] == ["delete-needs-owner"]
            request_id = data["approval"]["id"]
            assert request_id in message
            assert data["approval"]["wait_endpoint"].endswith(f"/v1/approvals/{request_id}/wait")

            shown = httpx.get(f"{live.url}/v1/approvals/{request_id}", headers=alice).json()
            assert shown["action"] == "tickets.delete" and shown["arguments"] == delete
            assert shown["resource"] == {"type": "MCPServer", "id": "helpdesk"}
            approved = httpx.post(
                f"{live.url}/v1/approvals/{request_id}/approve",
                json={"reason": "duplicate", "digest": shown["digest"]},
                headers=alice,
            )
            assert approved.status_code == 200, approved.text

            result = await client.call_tool("tickets.delete", delete)
            assert result.content[0].text == "deleted T-1043 (duplicate)"
            with pytest.raises(MCPError) as again:
                await client.call_tool("tickets.delete", delete)
            assert error_of(again)[2]["approval"]["id"] != request_id  # the grant was for one call

    run(scenario)
    # the listing asked about tickets.delete, yet only the two calls opened requests
    assert [r["type"] for r in live.audit("approval.")] == [
        "approval.requested",
        "approval.approved",
        "approval.used",
        "approval.requested",
    ]


def test_the_agent_credential_never_reaches_the_upstream(
    live_warden: LiveWarden, tmp_path: Path
) -> None:
    token = agent_task(live_warden)
    config = config_for(live_warden, tmp_path)

    async def scenario() -> str:
        async with proxied(config, token) as client:
            result = await client.call_tool("whoami", {})
            text: str = result.content[0].text
            return text

    text = run(scenario)
    assert "warden_env=[] authorization=None" in text


def test_resources_and_prompts_are_decided(live_warden: LiveWarden, tmp_path: Path) -> None:
    from mcp import MCPError

    token = agent_task(live_warden)
    config = config_for(live_warden, tmp_path)

    async def scenario() -> None:
        async with proxied(config, token) as client:
            listed = {str(r.uri) for r in (await client.list_resources()).resources}
            assert listed == {"ticket://T-1042"}
            read = await client.read_resource("ticket://T-1042")
            assert "INV-7731" in read.contents[0].text
            with pytest.raises(MCPError) as denied:
                await client.read_resource("ticket://T-1043")
            assert error_of(denied)[0] == -32001
            prompt = await client.get_prompt("reply", {"ticket": "T-1042"})
            assert "T-1042" in prompt.messages[0].content.text

    run(scenario)


def test_a_revoked_task_is_denied_at_once(live_warden: LiveWarden, tmp_path: Path) -> None:
    from mcp import MCPError

    spiffe = live_warden.register()
    task = live_warden.start_task(spiffe)
    config = config_for(live_warden, tmp_path)

    async def scenario() -> None:
        async with proxied(config, task["access_token"]) as client:
            assert not (await client.call_tool("tickets.read", {"ticket": "T-1042"})).is_error
            live_warden.complete(task)
            with pytest.raises(MCPError) as denied:
                await client.call_tool("tickets.read", {"ticket": "T-1042"})
            code, _, data = error_of(denied)
            assert code == -32001 and data["reason"] == "invalid_credential"
            # and nothing is listed for a dead credential
            assert (await client.list_tools()).tools == []

    run(scenario)


def test_an_unreachable_pdp_fails_closed(live_warden: LiveWarden, tmp_path: Path) -> None:
    from mcp import MCPError

    from warden.demo.server import free_port

    token = agent_task(live_warden)
    config = write_proxy_config(
        tmp_path / "proxy.yaml",
        warden={"url": f"http://127.0.0.1:{free_port()}"},  # nothing listens there
        upstreams=[helpdesk_upstream()],
    )

    async def scenario() -> None:
        async with proxied(config, token) as client:
            with pytest.raises(MCPError) as failed:
                await client.call_tool("tickets.read", {"ticket": "T-1042"})
            code, _, data = error_of(failed)
            assert code == -32603 and data["reason"] == "decision_unavailable"
            with pytest.raises(MCPError) as listing:
                await client.list_tools()
            assert error_of(listing)[0] == -32603

    run(scenario)


def test_hanging_and_crashing_upstreams_error_and_the_proxy_stays_up(
    live_warden: LiveWarden, tmp_path: Path
) -> None:
    from mcp import MCPError

    token = agent_task(live_warden)
    config = write_proxy_config(
        tmp_path / "proxy.yaml",
        warden={"url": live_warden.url},
        limits={"call_timeout": 1},
        upstreams=[helpdesk_upstream()],
    )

    async def scenario() -> None:
        async with proxied(config, token) as client:
            with pytest.raises(MCPError) as hung:
                await client.call_tool("sleep", {"seconds": 5})
            code, message, data = error_of(hung)
            assert code == -32603 and data["reason"] == "upstream"
            assert "did not answer" in message
            assert (await client.list_tools()).tools  # the proxy still answers

            with pytest.raises(MCPError) as crashed:
                await client.call_tool("crash", {})
            assert error_of(crashed)[0] == -32603
            # the upstream is started again on its next use
            again = await client.call_tool("tickets.read", {"ticket": "T-1042"})
            assert "INV-7731" in again.content[0].text

    run(scenario)


def test_the_sdk_client_in_auto_mode_falls_back_to_the_handshake(
    live_warden: LiveWarden, tmp_path: Path
) -> None:
    """The 2026 SDK probes `server/discover` first; the proxy steers it to `initialize`."""
    token = agent_task(live_warden)
    config = config_for(live_warden, tmp_path)

    async def scenario() -> str | None:
        async with proxied(config, token) as client:
            info = client.session.initialize_result
            return info.server_info.name if info else None

    assert run(scenario) == "warden-mcp-proxy"
    assert sys.executable


def test_several_upstreams_behind_one_proxy(live_warden: LiveWarden, tmp_path: Path) -> None:
    """Tools of every upstream in one list, routed by name; a dead upstream is left out."""
    from warden.demo.server import free_port

    token = agent_task(live_warden)
    config = write_proxy_config(
        tmp_path / "proxy.yaml",
        warden={"url": live_warden.url},
        upstreams=[
            helpdesk_upstream(),
            helpdesk_upstream("archive", tool_prefix="archive."),
            {"name": "gone", "url": f"http://127.0.0.1:{free_port()}/mcp"},
        ],
    )

    async def scenario() -> None:
        async with proxied(config, token) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            assert {"tickets.read", "archive.tickets.read"} <= tools
            result = await client.call_tool("archive.tickets.read", {"ticket": "T-1043"})
            assert "Password reset" in result.content[0].text

    run(scenario)
    records = live_warden.audit()
    archive = [r for r in records if r["data"].get("action") == "archive.tickets.read"]
    assert archive and all(
        r["data"]["resource"] == {"type": "MCPServer", "id": "archive"} for r in archive
    )
