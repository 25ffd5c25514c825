"""The guard under agent frameworks: LangChain tools and OpenAI Agents SDK function tools.
Each test runs only when its framework is installed (they are optional extras)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.conftest import require_module
from warden.sdk import AccessDeniedError, WardenClient, guard

from .conftest import SCOPE, LiveWarden

pytestmark = pytest.mark.enforcement


def _credential(live: LiveWarden) -> tuple[WardenClient, str]:
    spiffe = live.register()
    client = WardenClient(live.url)
    cred = client.exchange(live.svid(spiffe), scope=SCOPE, purpose="t", category="support")
    return client, cred.token


def test_langchain_tools(live_warden: LiveWarden) -> None:
    tools: Any = require_module("langchain_core.tools", "pip install langchain-core")
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
    with pytest.raises(tools.ToolException):
        export.invoke({"ticket": "T-1"})


def test_openai_agents_function_tools(live_warden: LiveWarden) -> None:
    agents: Any = require_module("agents", "pip install openai-agents")
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


@pytest.mark.integrity
def test_langchain_handle_tool_error_returns_the_reason_to_the_model(
    live_warden: LiveWarden,
) -> None:
    tools: Any = require_module("langchain_core.tools", "pip install langchain-core")
    from warden.sdk.integrations.langchain import guard as lc_guard
    from warden.sdk.integrations.langchain import guard_tool

    client, token = _credential(live_warden)

    @tools.tool
    @lc_guard(client, token, tool="email.send")
    def send_email(to: str, subject: str) -> str:
        """Send an email."""
        return f"sent to {to}"

    send_email.handle_tool_error = True

    assert send_email.invoke({"to": "carol@example.com", "subject": "s"}) == (
        "sent to carol@example.com"
    )
    refused = send_email.invoke({"to": "x@evil.test", "subject": "s"})
    assert refused.startswith("access_denied: `email.send` was denied")
    assert "no-external-email" in refused

    @tools.tool
    @lc_guard(client, token, tool="email.send")
    async def send_async(to: str, subject: str) -> str:
        """Send an email."""
        return "sent"

    # without handle_tool_error the framework raises its own ToolException, chained to Warden's
    with pytest.raises(tools.ToolException) as raised:
        asyncio.run(send_async.ainvoke({"to": "x@evil.test", "subject": "s"}))
    assert isinstance(raised.value.__cause__, AccessDeniedError)

    def export(ticket: str) -> str:
        """Export tickets."""
        return "exported"

    plain = tools.StructuredTool.from_function(
        export, name="tickets.export", handle_tool_error=True
    )
    answer = guard_tool(plain, client, token).invoke({"ticket": "T-1"})
    assert answer.startswith("access_denied: `tickets.export` was denied")
