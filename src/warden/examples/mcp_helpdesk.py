"""A small MCP server with helpdesk tools, for the demo, the docs and the tests.

Run it over stdio (``python -m warden.examples.mcp_helpdesk``) or Streamable HTTP
(``python -m warden.examples.mcp_helpdesk --http --port 8931``). It needs the official MCP
Python SDK (``pip install 'warden[mcp]'``). The tools only pretend: nothing is sent or paid.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from mcp.server.mcpserver import Context, MCPServer

TICKETS = {
    "T-1042": "Customer asks why invoice INV-7731 charges twice for May.",
    "T-1043": "Password reset link expired.",
}

server = MCPServer("helpdesk", instructions="Helpdesk tools (demo: nothing leaves this process).")


@server.tool(name="tickets.read", description="Read a support ticket by id.")
def read_ticket(ticket: str) -> str:
    return TICKETS.get(ticket, f"no ticket {ticket}")


@server.tool(name="email.send", description="Send an email (pretend).")
def send_email(to: str, subject: str, body: str = "") -> str:
    return f"queued email to {to}: {subject}"


@server.tool(name="payments.refund", description="Refund an invoice (pretend).")
def refund(invoice: str, amount: float) -> str:
    return f"refunded {amount} on {invoice}"


@server.tool(name="tickets.delete", description="Delete a ticket (pretend).")
def delete_ticket(ticket: str, reason: str = "") -> str:
    return f"deleted {ticket}" + (f" ({reason})" if reason else "")


@server.tool(name="tickets.export", description="Export every ticket (pretend).")
def export_tickets() -> str:
    return f"{len(TICKETS)} tickets exported"


@server.tool(name="whoami", description="What the server was told about the caller.")
def whoami(ctx: Context) -> str:
    # The proxy must never pass the agent's credential through: show what reached us.
    leaked = [k for k in os.environ if k.startswith("WARDEN_")]
    headers = ctx.headers or {}
    return (
        f"pid={os.getpid()} warden_env={sorted(leaked)} "
        f"authorization={headers.get('authorization')}"
    )


@server.tool(name="sleep", description="Sleep a number of seconds (for timeout tests).")
def sleep(seconds: float) -> str:
    time.sleep(seconds)
    return f"slept {seconds}"


@server.tool(name="crash", description="Exit the server process at once (for crash tests).")
def crash() -> str:
    os._exit(3)


@server.tool(
    name="tickets.summarize", description="Summarize tickets, reporting progress as it goes."
)
async def summarize(count: int, ctx: Context) -> str:
    for done in range(1, count + 1):
        await ctx.info(f"summarized ticket {done} of {count}")
        await ctx.report_progress(done, count, f"ticket {done}")
    return f"summarized {count} tickets"


@server.resource("ticket://T-1042", name="T-1042", description="Ticket T-1042")
def ticket_1042() -> str:
    return TICKETS["T-1042"]


@server.resource("ticket://T-1043", name="T-1043", description="Ticket T-1043")
def ticket_1043() -> str:
    return TICKETS["T-1043"]


@server.prompt(name="reply", description="Draft a reply to a ticket.")
def reply(ticket: str) -> str:
    return f"Write a short, friendly reply to ticket {ticket}: {TICKETS.get(ticket, '?')}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--http", action="store_true", help="serve Streamable HTTP, not stdio")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8931)
    args = parser.parse_args(argv)
    if args.http:
        server.run("streamable-http", host=args.host, port=args.port)
    else:
        server.run("stdio")


if __name__ == "__main__":
    main(sys.argv[1:])
