"""``warden reports …``: evidence and what-if reports from the server."""

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
from warden.cli.output import console, emit, fail, joined, print_json, table, when
from warden.cli.timeparse import parse_since

app = typer.Typer(help="Reports over the audit log.", no_args_is_help=True)


@app.command("monitor")
def monitor(
    since: Annotated[
        str | None, typer.Option("--since", help="Epoch seconds, ISO time, or e.g. 15m / 2h.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 1000,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Calls monitor mode let through that enforcement would have denied."""
    try:
        since_ts = parse_since(since)
    except ValueError as exc:
        fail(str(exc))
    with WardenClient(url, data_dir) as client:
        body = client.get("/v1/reports/monitor", since=since_ts, limit=limit)
    if as_json:
        print_json(body)
        return
    rows = body.get("would_have_denied", [])
    if not rows:
        console.print("nothing: no call was let through that enforcement would have denied")
        return
    emit(
        table(
            ["seq", "time", "agent", "task", "action", "resource", "mode set by", "policies"],
            [
                (
                    r.get("seq"),
                    when(r.get("ts")),
                    r.get("agent") or "",
                    r.get("task") or "",
                    r.get("action") or "",
                    _resource(r.get("resource")),
                    r.get("would_deny_by") or "",
                    joined(r.get("policies")),
                )
                for r in rows
            ],
            title="would have been denied",
        )
    )
    console.print(f"{body.get('count', len(rows))} call(s) would have been denied in enforce mode")


def _resource(value: object) -> str:
    if isinstance(value, dict):
        return f"{value.get('type', '')}:{value.get('id', '')}"
    return "" if value is None else str(value)
