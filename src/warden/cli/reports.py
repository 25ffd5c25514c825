"""``warden reports …``: evidence and what-if reports from the server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from warden.cli.audit import DatabaseUrlOption, JwksOption, load_jwks, local_store
from warden.cli.client import (
    DEFAULT_DATA_DIR,
    DEFAULT_URL,
    DataDirOption,
    JsonOption,
    UrlOption,
    WardenClient,
)
from warden.cli.output import (
    col,
    console,
    err_console,
    fail,
    joined,
    or_empty,
    print_json,
    show_table,
    when,
)
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
    show_table(
        rows,
        [
            col("seq"),
            col("time", "ts", when),
            col("agent", fmt=or_empty),
            col("task", fmt=or_empty),
            col("action", fmt=or_empty),
            col("resource", fmt=_resource),
            col("mode set by", "would_deny_by", or_empty),
            col("policies", fmt=joined),
        ],
        title="would have been denied",
    )
    console.print(f"{body.get('count', len(rows))} call(s) would have been denied in enforce mode")


def _resource(value: object) -> str:
    if isinstance(value, dict):
        return f"{value.get('type', '')}:{value.get('id', '')}"
    return "" if value is None else str(value)


@app.command("controls")
def controls(
    start: Annotated[
        str, typer.Option("--from", help="Period start: epoch, ISO time, or e.g. 30d (ago).")
    ] = "30d",
    end: Annotated[
        str | None, typer.Option("--to", help="Period end (default: now); same forms as --from.")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="html, md or json.")] = "html",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write here (default: stdout).")
    ] = None,
    jwks: JwksOption = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Evaluate the control catalogue over a period of the audit log, with integrity proof.

    Reads the database directly and streams the log once (progress on stderr): any period fits.
    """
    import sys
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

    from warden.errors import WardenError
    from warden.evidence.render import RENDERERS, render
    from warden.service.reports import controls_report

    if fmt not in RENDERERS:
        fail("--format must be html, md or json")
    if fmt == "html" and out is None and sys.stdout.isatty():
        fail("an html report is a file: give `-o report.html`, or pipe the output")
    now = time.time()
    try:
        start_ts = parse_since(start, now=now)
        end_ts = parse_since(end, now=now) if end else now
    except ValueError as exc:
        fail(str(exc))
    assert start_ts is not None and end_ts is not None
    store = local_store(data_dir, database_url)
    try:
        keys = load_jwks(jwks, store) if store.latest_checkpoint() else {"keys": []}
        total, _ = store.audit_head()
        with Progress(
            SpinnerColumn(),
            TextColumn("evaluating controls"),
            BarColumn(),
            MofNCompleteColumn(),
            console=err_console,
            transient=True,
        ) as progress:
            bar = progress.add_task("report", total=total or None)
            report = controls_report(
                store,
                keys,
                start=start_ts,
                end=end_ts,
                now=now,
                progress=lambda n: progress.advance(bar, n),
            )
    except WardenError as exc:
        fail(f"{exc.code}: {exc.message}")
    finally:
        store.close()
    text = render(report, fmt)
    integrity = report["integrity"]
    if not integrity["ok"]:
        err_console.print(f"WARNING: {integrity['statement']}", markup=False)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text)
        counts = report["summary"]["controls"]
        err_console.print(
            f"wrote {out}: {counts['pass']} pass, {counts['fail']} fail, {counts['no_data']} no "
            f"data, {counts['not_evaluable']} not evaluated",
            markup=False,
        )
    if not integrity["ok"]:
        raise typer.Exit(2)
