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
from warden.cli.output import (
    Column,
    col,
    show_list,
    when,
)

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
    show_list(
        page,
        "findings",
        [
            col("when", "created_at", when),
            col("agent"),
            col("severity"),
            col("score"),
            Column("actions", lambda f: " ".join(a for a in f["actions"] if a != "record")),
            col("finding", "summary"),
        ],
        as_json=as_json,
        empty="no findings",
    )
