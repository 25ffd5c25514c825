"""Demo chapter: an MCP client whose tool calls go through ``warden mcp-proxy``.

The official MCP Python SDK client starts the proxy over stdio; the proxy starts the helpdesk
example server and asks the demo's Warden server about every message. The agent's task
credential reaches the proxy in its environment and never the server. Calls are allowed,
denied, and — for a ticket deletion, under the packaged policy ``deletes-need-owner-approval``
— held for the agent owner's approval: bob (whose approver account the approvals chapter
created) approves that exact call, and the client's retry through the proxy passes.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import yaml
from rich.text import Text

from warden.cli.dev import JWT_TOKEN_TYPE, TOKEN_EXCHANGE
from warden.cli.output import console
from warden.demo.story import Demo, Step, StepError

AGENT = {
    "name": "helpdesk-agent",
    "owner": "bob@example.com",
    "purpose": "work the helpdesk queue through MCP tools",
    "risk_tier": "medium",
    "entitlements": [
        "tickets.read",
        "email.send",
        "tickets.export",
        "tickets.delete",
        "payments.refund",
    ],
    "groups": ["support"],
}
SCOPE = "tickets.read email.send tickets.export tickets.delete"
DELETE = {"ticket": "T-1042", "reason": "answered and closed"}


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
    d.check(status == 200, f"a task credential for {SCOPE}", body)
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


def owner_approves(d: Demo, request_id: str) -> None:
    """Bob, the agent's owner, approves exactly the call the proxy held (his approver token)."""
    owner_token = d.facts.get("approvals", {}).get("owner_token")
    if not owner_token:
        raise StepError(
            "bob's approver account comes from the approvals chapter, which must run first"
        )
    status, shown = d.call(
        "GET",
        f"/v1/approvals/{request_id}",
        bearer=owner_token,
        as_who="bob's operator token",
        show=("agent", "action", "resource", "arguments", "awaiting", "digest"),
    )
    d.check(
        status == 200
        and shown.get("arguments") == DELETE
        and shown.get("action") == "tickets.delete",
        "bob sees the held MCP call: tickets.delete on MCPServer helpdesk, with its arguments",
        shown,
    )
    status, decided = d.call(
        "POST",
        f"/v1/approvals/{request_id}/approve",
        json_body={"reason": "ticket answered", "digest": shown["digest"]},
        bearer=owner_token,
        as_who="bob's operator token",
        show=("status", "decided_by"),
    )
    d.check(
        status == 200 and decided.get("status") == "approved",
        "bob approves it: a one-time grant for that call",
        decided,
    )


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
                {"tickets.read", "tickets.delete"} <= set(tools)
                and "payments.refund" not in tools
                and "tickets.export" not in tools,
                "the list shows what the task may call (tickets.delete once approved): "
                "payments.refund (not in scope) and tickets.export (forbidden outright) are hidden",
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
            held = await call(client, "tickets.delete", DELETE)
            data = getattr(held, "data", None) or {}
            d.check(
                isinstance(held, MCPError)
                and held.code == -32001
                and data.get("reason") == "approval_required"
                and data.get("policies") == ["deletes-need-owner-approval"]
                and str((data.get("approval") or {}).get("id", "")).startswith("apr_"),
                "held with -32001 for approval by policy `deletes-need-owner-approval`",
                data or held,
            )
            approval = data["approval"]
            d.say(f"approval request {approval['id']}: the client may long-poll its wait_endpoint")
            await anyio.to_thread.run_sync(owner_approves, d, approval["id"])
            retry = await call(client, "tickets.delete", DELETE)
            d.check(
                not isinstance(retry, MCPError),
                "the client's retry through the proxy passes: the deletion ran, once",
                getattr(retry, "data", retry),
            )
            again = await call(client, "tickets.delete", DELETE)
            d.check(
                isinstance(again, MCPError)
                and (again.data or {}).get("reason") == "approval_required"
                and again.data["approval"]["id"] != approval["id"],
                "a second deletion is held again: the grant was for one call",
                getattr(again, "data", again),
            )

    anyio.run(session)


STEPS: list[Step] = [
    ("MCP: a task for an agent that works through MCP tools", start_mcp_task),
    (
        "MCP: an MCP client's tool calls through warden mcp-proxy: allowed, denied, held",
        mcp_session,
    ),
]
