"""``warden findings list``: behavioural findings, newest first."""

from __future__ import annotations

from typing import Annotated

import typer

from warden.cli.client import (
    DEFAULT_DATA_DIR,
    DEFAULT_URL,
    DataDirOption,
    JsonOption,
    UrlOption,
    WardenClient,
)
from warden.cli.output import console, emit, print_json, table, when

app = typer.Typer(help="Behavioural findings.", no_args_is_help=True)


@app.command("list")
def list_findings(
    agent: Annotated[str | None, typer.Option("--agent", help="Only this agent's.")] = None,
    severity: Annotated[
        str | None, typer.Option("--severity", help="low, medium, high or critical.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 100,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """List findings: what each agent did unlike its baseline, and what escalation did."""
    with WardenClient(url, data_dir) as client:
        page = client.get("/v1/findings", agent=agent, severity=severity, limit=limit)
    if as_json:
        print_json(page)
        return
    items = page.get("findings", [])
    if not items:
        console.print("no findings")
        return
    emit(
        table(
            ["when", "agent", "severity", "score", "actions", "finding"],
            [
                (
                    when(f["created_at"]),
                    f["agent"],
                    f["severity"],
                    f["score"],
                    " ".join(a for a in f["actions"] if a != "record"),
                    f["summary"],
                )
                for f in items
            ],
        )
    )
