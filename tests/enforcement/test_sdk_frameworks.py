"""The guard under agent frameworks: LangChain tools and OpenAI Agents SDK function tools.
Each test runs only when its framework is installed (they are optional extras)."""

from __future__ import annotations

import asyncio
import json

import pytest

from warden.sdk import AccessDeniedError, WardenClient, guard

from .conftest import SCOPE, LiveWarden

pytestmark = pytest.mark.enforcement


def _credential(live: LiveWarden) -> tuple[WardenClient, str]:
    spiffe = live.register()
    client = WardenClient(live.url)
    cred = client.exchange(live.svid(spiffe), scope=SCOPE, purpose="t", category="support")
    return client, cred.token


def test_langchain_tools(live_warden: LiveWarden) -> None:
    tools = pytest.importorskip("langchain_core.tools", reason="langchain-core is not installed")
    from warden.sdk.integrations.langchain import guard_tool

    client, token = _credential(live_warden)
    sent: list[str] = []

    @tools.tool
    @guard(client, token, tool="email.send")
    def send_email(to: str, subject: str) -> str:
        """Send an email."""
        sent.append(to)
        return f"sent to {to}"

    assert send_email.name == "send_email"
    assert set(send_email.args) == {"to", "subject"}  # LangChain still sees the signature
    assert (
        send_email.invoke({"to": "carol@example.com", "subject": "s"})
        == "sent to carol@example.com"
    )
    with pytest.raises(AccessDeniedError):
        send_email.invoke({"to": "x@evil.test", "subject": "s"})
    assert sent == ["carol@example.com"]

    def read_ticket(ticket: str) -> str:
        """Read a ticket."""
        return f"ticket {ticket}"

    plain = tools.StructuredTool.from_function(read_ticket, name="tickets.read")
    guarded = guard_tool(plain, client, token)
    assert guarded.invoke({"ticket": "T-1"}) == "ticket T-1"
    export = guard_tool(
        tools.StructuredTool.from_function(read_ticket, name="tickets.export"), client, token
    )
    with pytest.raises(AccessDeniedError):
        export.invoke({"ticket": "T-1"})


def test_openai_agents_function_tools(live_warden: LiveWarden) -> None:
    agents = pytest.importorskip("agents", reason="openai-agents is not installed")
    from agents.tool_context import ToolContext

    from warden.sdk.integrations.openai_agents import guarded_function_tool

    client, token = _credential(live_warden)
    sent: list[str] = []

    def send_email(to: str, subject: str) -> str:
        """Send an email."""
        sent.append(to)
        return f"sent to {to}"

    tool = guarded_function_tool(send_email, client, token, tool="email.send")
    assert isinstance(tool, agents.FunctionTool)
    assert set(tool.params_json_schema["properties"]) == {"to", "subject"}

    async def invoke(arguments: dict[str, str]) -> object:
        raw = json.dumps(arguments)
        ctx = ToolContext(
            context=None, tool_name=tool.name, tool_call_id="call_1", tool_arguments=raw
        )
        return await tool.on_invoke_tool(ctx, raw)

    assert (
        asyncio.run(invoke({"to": "carol@example.com", "subject": "s"}))
        == "sent to carol@example.com"
    )
    refused = asyncio.run(invoke({"to": "x@evil.test", "subject": "s"}))
    assert str(refused).startswith("access_denied: `email.send` was denied")
    assert "no-external-email" in str(refused)
    assert sent == ["carol@example.com"]
