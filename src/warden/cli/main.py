"""The ``warden`` command: ``warden serve``, ``warden agents …``, ``warden demo`` and friends."""

from __future__ import annotations

from typing import Annotated

import typer

import warden
from warden.cli import (
    a2a_proxy,
    agents,
    approvals,
    audit,
    certify,
    dev,
    findings,
    identity,
    keys,
    mcp,
    mcp_proxy,
    operators,
    owners,
    policies,
    reports,
    serve,
    tasks,
    why,
)
from warden.demo import command as demo

app = typer.Typer(
    name="warden",
    help="Warden: runtime identity and authorization for AI agents.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
app.command("serve")(serve.serve)
app.add_typer(agents.app, name="agents")
app.add_typer(tasks.app, name="tasks")
app.add_typer(policies.app, name="policies")
app.add_typer(audit.app, name="audit")
app.add_typer(keys.app, name="keys")
app.add_typer(reports.app, name="reports")
app.add_typer(reports.app, name="report", hidden=True)  # `warden report controls` reads well too
app.add_typer(owners.app, name="owners")
app.add_typer(certify.app, name="certify")
app.add_typer(dev.app, name="dev")
app.add_typer(approvals.app, name="approvals")
app.add_typer(operators.app, name="operators")
app.add_typer(findings.app, name="findings")
app.command("demo")(demo.demo)
app.command("why")(why.why)
app.command("agent-identity")(identity.agent_identity)
app.command("mcp-proxy")(mcp_proxy.mcp_proxy)
app.add_typer(mcp.app, name="mcp")
app.command("a2a-proxy")(a2a_proxy.a2a_proxy)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"warden {warden.__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Warden: runtime identity and authorization for AI agents."""


def main() -> None:
    app()


if __name__ == "__main__":
    main()
