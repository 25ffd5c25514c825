"""``warden audit …``: read the audit log through the server, verify its hash chain locally."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from warden.cli.client import (
    DEFAULT_DATA_DIR,
    DEFAULT_URL,
    DataDirOption,
    JsonOption,
    UrlOption,
    WardenClient,
)
from warden.cli.output import console, emit, err_console, fail, print_json, table, when
from warden.cli.timeparse import parse_since

if TYPE_CHECKING:
    from warden.core.model import AuditRecord

app = typer.Typer(help="Read and verify the tamper-evident audit log.", no_args_is_help=True)

PROGRESS_EVERY = 1000


def summary(record: dict[str, Any], width: int = 90) -> str:
    """One line describing what an audit record says."""
    data = record.get("data") or {}
    kind = record.get("type", "")
    if kind == "authz.decision":
        res = data.get("resource") or {}
        parts = [
            str(data.get("decision", "")),
            str(data.get("action", "")),
            f"{res.get('type', '')}:{res.get('id', '')}" if res else "",
        ]
        why = data.get("reasons") or ([data["reason"]] if data.get("reason") else [])
        if why:
            parts.append("(" + ", ".join(str(w) for w in why) + ")")
        if data.get("monitor"):
            parts.append("[monitor: would deny]")
        text = " ".join(p for p in parts if p)
    else:
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return text if len(text) <= width else text[: width - 1] + "…"


@app.command("list")
def list_audit(
    type_prefix: Annotated[
        str | None, typer.Option("--type", help="Only record types starting with this.")
    ] = None,
    agent: Annotated[str | None, typer.Option("--agent", help="Only this agent.")] = None,
    task: Annotated[str | None, typer.Option("--task", help="Only this task id.")] = None,
    after: Annotated[int, typer.Option("--after", help="Only records after this seq.")] = 0,
    since: Annotated[
        str | None, typer.Option("--since", help="Epoch seconds, ISO time, or e.g. 15m / 2h.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 100,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """List audit records, oldest first (page with --after)."""
    try:
        since_ts = parse_since(since)
    except ValueError as exc:
        fail(str(exc))
    with WardenClient(url, data_dir) as client:
        page = client.get(
            "/v1/audit",
            type=type_prefix,
            agent=agent,
            task=task,
            after=after or None,
            since=since_ts,
            limit=limit,
        )
    if as_json:
        print_json(page)
        return
    records = page.get("records", [])
    if not records:
        console.print("no audit records")
        return
    emit(
        table(
            ["seq", "time", "type", "actor", "agent", "task", "what"],
            [
                (
                    r["seq"],
                    when(r.get("ts")),
                    r["type"],
                    r.get("actor", ""),
                    r.get("agent") or "",
                    r.get("task_id") or "",
                    summary(r),
                )
                for r in records
            ],
        )
    )
    if page.get("next"):
        console.print(f"(more: continue with --after {page['next']})")


def _counted(records: Iterable[AuditRecord], advance: Any) -> Iterator[AuditRecord]:
    n = 0
    for rec in records:
        yield rec
        n += 1
        if n % PROGRESS_EVERY == 0:
            advance(PROGRESS_EVERY)
    advance(n % PROGRESS_EVERY)


@app.command("verify")
def verify(
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            envvar="WARDEN_DATABASE_URL",
            help="Database URL (default: the SQLite database in the data folder).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Verify the whole hash chain, reading the database directly (no server needed)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

    from warden.core.audit import verify_chain
    from warden.errors import WardenError
    from warden.storage.sql import open_store, sqlite_url_for

    if database_url is None:
        db_file = Path(data_dir) / "warden.db"
        if not db_file.is_file():
            fail(f"no Warden database at `{db_file}` (use --data-dir or --database-url)")
        database_url = sqlite_url_for(data_dir)
    try:
        store = open_store(database_url)
    except WardenError as exc:
        fail(f"{exc.code}: {exc.message}")
    try:
        total, _ = store.audit_head()
        with Progress(
            SpinnerColumn(),
            TextColumn("verifying audit chain"),
            BarColumn(),
            MofNCompleteColumn(),
            console=err_console,
            transient=True,
            disable=as_json,
        ) as progress:
            bar = progress.add_task("verify", total=total or None)
            result = verify_chain(_counted(store.iter_audit(), lambda n: progress.advance(bar, n)))
    except WardenError as exc:
        fail(f"{exc.code}: {exc.message}")
    finally:
        store.close()
    if as_json:
        print_json(
            {
                "ok": result.ok,
                "records": result.records,
                "head_hash": result.head_hash,
                "first_bad_seq": result.first_bad_seq,
                "problem": result.problem,
            }
        )
    elif result.ok:
        console.print(f"ok: {result.records} records, head {result.head_hash}")
    else:
        console.print(
            f"broken at seq {result.first_bad_seq}: {result.problem} "
            f"({result.records} records before it verify)",
            markup=False,
        )
    if not result.ok:
        raise typer.Exit(1)
