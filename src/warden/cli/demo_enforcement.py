"""Demo chapter: an MCP client whose tool calls go through ``warden mcp-proxy``.

The official MCP Python SDK client starts the proxy over stdio; the proxy starts the helpdesk
example server and asks the demo's Warden server about every message. The agent's task
credential reaches the proxy in its environment and never the server.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import yaml
from rich.text import Text

from warden.cli.demo import Demo, Step, StepError
from warden.cli.dev import JWT_TOKEN_TYPE, TOKEN_EXCHANGE
from warden.cli.output import console

AGENT = {
    "name": "helpdesk-agent",
    "owner": "bob@example.com",
    "purpose": "work the helpdesk queue through MCP tools",
    "risk_tier": "medium",
    "entitlements": ["tickets.read", "email.send", "tickets.export", "payments.refund"],
    "groups": ["support"],
}
SCOPE = "tickets.read email.send tickets.export"


def _mcp_line(direction: str, text: str) -> None:
    console.print(Text.assemble(f"   {direction} ", ("MCP ", "bold magenta"), text))


def start_mcp_task(d: Demo) -> None:
    from warden.cli.dev import DEV_TRUST_DOMAIN, dev_trust_dir
    from warden.tokens.svid import DevTrustDomain

    status, body = d.call(
        "POST",
        "/v1/agents",
        json_body=AGENT,
        admin=True,
        show=("name", "spiffe_id", "entitlements"),
    )
    d.check(status == 201, "201 Created: helpdesk-agent", body)
    spiffe_id = body["spiffe_id"]
    domain = DevTrustDomain.load(DEV_TRUST_DOMAIN, dev_trust_dir(d.data_dir))
    form = {
        "grant_type": TOKEN_EXCHANGE,
        "subject_token": domain.mint(spiffe_id, "warden", ttl=300),
        "subject_token_type": JWT_TOKEN_TYPE,
        "scope": SCOPE,
        "authorization_details": json.dumps(
            [{"type": "agent_task", "purpose": "answer ticket T-1042", "category": "support"}]
        ),
    }
    status, body = d.call("POST", "/oauth2/token", form=form, show=("task_id", "scope"))
    d.check(status == 200, "a task credential for tickets.read email.send tickets.export", body)
    d.facts["mcp_credential"] = body["access_token"]
    config = d.data_dir / "mcp-proxy.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "warden": {"url": d.url},
                "upstreams": [
                    {
                        "name": "helpdesk",
                        "command": [sys.executable, "-m", "warden.examples.mcp_helpdesk"],
                    }
                ],
            }
        )
    )
    d.facts["mcp_config"] = str(config)
    d.say(f"proxy config {config}: upstream `helpdesk` (stdio), decisions from {d.url}")


def mcp_session(d: Demo) -> None:
    try:
        import anyio
        from mcp import Client, MCPError, StdioServerParameters
    except ImportError:
        raise StepError("the MCP Python SDK is not installed: pip install 'warden[mcp]'") from None

    env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
    env["WARDEN_TASK_CREDENTIAL"] = d.facts["mcp_credential"]
    command = [sys.executable, "-m", "warden.cli.main", "mcp-proxy", "--config"]
    params = StdioServerParameters(
        command=command[0], args=[*command[1:], d.facts["mcp_config"]], env=env
    )
    d.say("MCP client → warden mcp-proxy (stdio) → helpdesk server; Warden decides each call")

    async def call(client: Any, tool: str, arguments: dict[str, Any]) -> Any:
        _mcp_line("→", f"tools/call {tool} {json.dumps(arguments)}")
        try:
            result = await client.call_tool(tool, arguments)
        except MCPError as exc:
            _mcp_line("←", f"error {exc.code}: {exc.message}")
            return exc
        _mcp_line("←", f"result: {result.content[0].text}")
        return result

    async def session() -> None:
        async with Client(params, read_timeout_seconds=30) as client:
            _mcp_line("→", "tools/list")
            tools = sorted(t.name for t in (await client.list_tools()).tools)
            _mcp_line("←", ", ".join(tools))
            d.check(
                "tickets.read" in tools
                and "payments.refund" not in tools
                and "tickets.export" not in tools,
                "the list shows what the task may call: payments.refund (not in scope) "
                "and tickets.export (forbidden outright) are hidden",
                tools,
            )
            read = await call(client, "tickets.read", {"ticket": "T-1042"})
            d.check(not isinstance(read, MCPError), "allowed: the ticket came back", read)
            mail = await call(
                client, "email.send", {"to": "carol@example.com", "subject": "INV-7731"}
            )
            d.check(not isinstance(mail, MCPError), "allowed: email inside example.com", mail)
            out = await call(
                client, "email.send", {"to": "someone@elsewhere.test", "subject": "INV-7731"}
            )
            d.check(
                isinstance(out, MCPError)
                and out.code == -32001
                and out.data.get("policies") == ["no-external-email"],
                "denied with -32001 by policy `no-external-email`",
                getattr(out, "data", out),
            )
            refund = await call(client, "payments.refund", {"invoice": "INV-7731", "amount": 120})
            d.check(
                isinstance(refund, MCPError) and refund.data.get("reason") == "out_of_scope",
                "denied with -32001: payments.refund is outside the task's scope",
                getattr(refund, "data", refund),
            )

    anyio.run(session)


STEPS: list[Step] = [
    ("MCP: a task for an agent that works through MCP tools", start_mcp_task),
    ("MCP: an MCP client's tool calls through warden mcp-proxy", mcp_session),
]
