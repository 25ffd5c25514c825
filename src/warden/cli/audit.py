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
    seg,
)
from warden.cli.output import (
    Column,
    col,
    console,
    err_console,
    fail,
    more_after,
    or_empty,
    print_json,
    show_list,
    when,
)
from warden.cli.timeparse import parse_since

if TYPE_CHECKING:
    from warden.audit.head import ChainHead
    from warden.core.governance import Checkpoint
    from warden.core.model import AuditRecord
    from warden.core.ports import Store

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


RECORD_COLUMNS = (
    col("seq"),
    col("time", "ts", when),
    col("type"),
    col("actor"),
    col("agent", fmt=or_empty),
    col("task", "task_id", or_empty),
    Column("what", summary),
)


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
    _print_records(page, as_json)


def _counted(records: Iterable[AuditRecord], advance: Any) -> Iterator[AuditRecord]:
    n = 0
    for rec in records:
        yield rec
        n += 1
        if n % PROGRESS_EVERY == 0:
            advance(PROGRESS_EVERY)
    advance(n % PROGRESS_EVERY)


DatabaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="WARDEN_DATABASE_URL",
        help="Database URL (default: the SQLite database in the data folder).",
    ),
]
JwksOption = Annotated[
    str | None,
    typer.Option(
        "--jwks",
        help="The public JWKS (file or URL, e.g. http://host/.well-known/jwks.json) that "
        "verifies checkpoints; default: the keys in the data folder.",
    ),
]


def local_store(data_dir: Path, database_url: str | None) -> Store:
    """The store behind a server, opened directly (reads need no server)."""
    from warden.errors import WardenError
    from warden.storage.sql import open_store, sqlite_url_for

    if database_url is None:
        db_file = Path(data_dir) / "warden.db"
        if not db_file.is_file():
            fail(f"no Warden database at `{db_file}` (use --data-dir or --database-url)")
        database_url = sqlite_url_for(data_dir)
    try:
        return open_store(database_url)
    except WardenError as exc:
        fail(f"{exc.code}: {exc.message}")


def load_jwks(source: str | None, store: Any) -> dict[str, Any]:
    """The JWKS from a URL or a file, or else every public key recorded in the database.

    Keys read from the database are only as trustworthy as the database: for evidence a database
    administrator cannot forge, verify against a JWKS kept elsewhere (``--jwks``).
    """
    import httpx

    from warden.tokens.checkpoint import load_jwks as parse

    try:
        if source is None:
            from warden.tokens.sealed import historical_jwks

            return historical_jwks(store.list_signing_keys())
        if source.startswith(("http://", "https://")):
            return parse(httpx.get(source, timeout=10).raise_for_status().text)
        return parse(Path(source).read_text())
    except (OSError, ValueError, httpx.HTTPError) as exc:
        fail(f"cannot load the jwks from `{source}`: {exc}")


def _external_checkpoints(path: Path) -> list[Checkpoint]:
    from warden.service.checkpoints import parse_checkpoint_line

    try:
        lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
        return [parse_checkpoint_line(ln) for ln in lines]
    except (OSError, ValueError, KeyError) as exc:
        fail(f"cannot read checkpoints from `{path}`: {exc}")


def _head(path: Path | None, data_dir: Path) -> ChainHead | None:
    """The chain head outside the database: ``--head``, else the data folder's, if any."""
    from warden.audit.head import HEAD_FILE, read_head

    target = path if path is not None else Path(data_dir) / HEAD_FILE
    if path is not None and not path.is_file():
        fail(f"no audit head file at `{path}`")
    try:
        return read_head(target)
    except ValueError as exc:
        fail(str(exc))


@app.command("verify")
def verify(
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    database_url: DatabaseUrlOption = None,
    jwks: JwksOption = None,
    checkpoints_file: Annotated[
        Path | None,
        typer.Option(
            "--checkpoints",
            help="Also check checkpoints exported outside the database (a JSON-lines file).",
        ),
    ] = None,
    head_file: Annotated[
        Path | None,
        typer.Option(
            "--head",
            help="The chain head kept outside the database (default: audit-head.json in the "
            "data folder, when present): a log that ends before it was cut.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Verify the hash chain and every signed checkpoint, reading the database directly;
    compare its tail with the chain head and checkpoint kept outside it (truncation)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

    from warden.errors import WardenError
    from warden.service.checkpoints import verify_log

    head = _head(head_file, data_dir)
    store = local_store(data_dir, database_url)
    try:
        stored = list(store.iter_checkpoints())
        external = _external_checkpoints(checkpoints_file) if checkpoints_file else []
        if head is not None and head.checkpoint is not None:
            external.append(head.checkpoint)
        keys = load_jwks(jwks, store) if stored or external else {"keys": []}
        total, _ = store.audit_head()
        with Progress(
            SpinnerColumn(),
            TextColumn("verifying audit chain and checkpoints"),
            BarColumn(),
            MofNCompleteColumn(),
            console=err_console,
            transient=True,
            disable=as_json,
        ) as progress:
            bar = progress.add_task("verify", total=total or None)
            result = verify_log(
                _counted(store.iter_audit(), lambda n: progress.advance(bar, n)),
                [*stored, *external],
                keys,
                head,
            )
    except WardenError as exc:
        fail(f"{exc.code}: {exc.message}")
    finally:
        store.close()
    if as_json:
        print_json(result.as_dict())
    elif result.ok:
        signed = (
            f", {result.checkpoints} signed checkpoint(s) verified" if stored or external else ""
        )
        outside = f", reaches the recorded head (seq {head.seq})" if head is not None else ""
        console.print(
            f"ok: {result.records} records, head {result.head_hash}{signed}{outside}",
            markup=False,
        )
    elif result.kind == "truncated" and result.missing is not None:
        first, last = result.missing
        console.print(
            f"truncated: records {first}..{last} are missing: {result.problem}", markup=False
        )
    else:
        console.print(
            f"broken at seq {result.first_bad_seq}: {result.problem} "
            f"({result.records} records before it verify)",
            markup=False,
        )
    if not result.ok:
        raise typer.Exit(1)


@app.command("search")
def search(
    agent: Annotated[str | None, typer.Option("--agent", help="This agent.")] = None,
    owner: Annotated[str | None, typer.Option("--owner", help="Agents this human owns.")] = None,
    task: Annotated[str | None, typer.Option("--task", help="This task.")] = None,
    subtree: Annotated[
        bool, typer.Option("--subtree", help="With --task: its delegated subtasks too.")
    ] = False,
    on_behalf_of: Annotated[
        str | None, typer.Option("--on-behalf-of", help="Tasks run for this human.")
    ] = None,
    tool: Annotated[str | None, typer.Option("--tool", help="Decisions on this tool.")] = None,
    decision: Annotated[str | None, typer.Option("--decision", help="allow or deny.")] = None,
    policy: Annotated[
        str | None, typer.Option("--policy", help="A policy id in the reasons.")
    ] = None,
    type_prefix: Annotated[str | None, typer.Option("--type", help="Record type prefix.")] = None,
    decision_id: Annotated[
        str | None, typer.Option("--decision-id", help="The records of this decision.")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="From (epoch, ISO, or 2h ago).")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Until (epoch, ISO, or 1h ago).")
    ] = None,
    after: Annotated[int, typer.Option("--after", help="Only records after this seq.")] = 0,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 100,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Who did what, for whom, under which policy: filter the audit log."""
    try:
        since_ts, until_ts = parse_since(since), parse_since(until)
    except ValueError as exc:
        fail(str(exc))
    with WardenClient(url, data_dir) as client:
        page = client.get(
            "/v1/audit",
            agent=agent,
            owner=owner,
            task=task,
            subtree="true" if subtree else None,
            on_behalf_of=on_behalf_of,
            tool=tool,
            decision=decision,
            policy=policy,
            type=type_prefix,
            decision_id=decision_id,
            since=since_ts,
            until=until_ts,
            after=after or None,
            limit=limit,
        )
    _print_records(page, as_json)


def _print_records(page: dict[str, Any], as_json: bool) -> None:
    show_list(
        page,
        "records",
        RECORD_COLUMNS,
        as_json=as_json,
        empty="no audit records",
        more=more_after,
    )


@app.command("show")
def show(
    decision_id: Annotated[str, typer.Argument(help="The decision id (from the PEP's answer).")],
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """One decision's audit record and why it came out so (same as ``warden why``, plus the
    other records of that decision)."""
    from warden.cli.why import fetch, print_why

    found = fetch(decision_id, url, data_dir)
    if as_json:
        print_json(found)
    else:
        print_why(found, related=True)


@app.command("story")
def story(
    task: Annotated[str, typer.Argument(help="The task id.")],
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """One task's full story: attestation, credentials, decisions, approvals, leases, end."""
    with WardenClient(url, data_dir) as client:
        body = client.get(f"/v1/audit/tasks/{seg(task)}/story")
    if as_json:
        print_json(body)
        return
    _print_story(body, 0)


def _print_story(node: dict[str, Any], depth: int) -> None:
    pad = "  " * depth
    t = node["task"]
    console.print(
        f"{pad}task {t['id']} by {t['agent']} (owner {node.get('agent_owner') or '?'}"
        + (f", on behalf of {node['on_behalf_of']}" if node.get("on_behalf_of") else "")
        + f"): {t['purpose']} [{t['status']}]",
        markup=False,
    )
    console.print(f"{pad}  chain: {' → '.join(node['chain'])}", markup=False)
    att = node.get("attestation") or {}
    if att:
        console.print(
            f"{pad}  attested by {att.get('method')} as {att.get('spiffe_id')}", markup=False
        )
    for section in (
        "start",
        "credentials",
        "decisions",
        "approvals",
        "leases",
        "findings",
        "delegation",
        "end",
        "other",
    ):
        for rec in node.get(section, []):
            console.print(
                f"{pad}  {when(rec['ts'])} {section[:-1] if section.endswith('s') else section}: "
                f"{rec['type']} {summary(rec, 70)}",
                markup=False,
            )
    for child in node.get("subtasks", []):
        _print_story(child, depth + 1)


@app.command("checkpoint")
def checkpoint(
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Sign a checkpoint of the audit chain now (and copy it to the configured sinks)."""
    with WardenClient(url, data_dir) as client:
        body = client.post("/v1/audit/checkpoints")
    if as_json:
        print_json(body)
        return
    cp = body.get("checkpoint")
    if cp is None:
        console.print("the audit log is empty: nothing to sign")
        return
    state = "signed" if body["created"] else "already covered by"
    console.print(
        f"{state} checkpoint at seq {cp['seq']}: head {cp['head_hash']} (key {cp['kid']})",
        markup=False,
    )


@app.command("export")
def export(
    fmt: Annotated[
        str, typer.Option("--format", help="ocsf (OCSF 1.8.0 events) or jsonl.")
    ] = "ocsf",
    out: Annotated[
        Path | None, typer.Option("--out", help="Append to this JSON-lines file (resumes).")
    ] = None,
    sink: Annotated[
        str | None, typer.Option("--sink", help="POST batches to this http(s) endpoint (resumes).")
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Cursor name for --sink (default: the url).")
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep exporting new records (Ctrl-C stops).")
    ] = False,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between polls.")] = 2.0,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Export the audit log as OCSF or JSON lines, to stdout, a file or an HTTP endpoint.

    A file or endpoint resumes where it stopped: nothing is lost or repeated when it was down.
    """
    import time

    from warden.core.clock import SystemClock
    from warden.errors import WardenError
    from warden.service.export import audit_exporter, encoder
    from warden.service.sinks import FileSink, HTTPSink, Sink

    if out is not None and sink is not None:
        fail("use --out or --sink, not both")
    if fmt not in ("ocsf", "jsonl"):
        fail("--format must be ocsf or jsonl")
    encode = encoder(fmt)
    store = local_store(data_dir, database_url)
    try:
        if out is None and sink is None:
            for rec in store.iter_audit():
                typer.echo(encode(rec))
            return
        target: Sink = (
            FileSink(out)
            if out is not None
            else HTTPSink(str(sink), store, SystemClock(), name=name or f"cli:{sink}")
        )
        exporter = audit_exporter(store, target, fmt)
        while True:
            try:
                sent = exporter.drain()
                if sent:
                    err_console.print(f"exported {sent} record(s) to {target.name}", markup=False)
            except WardenError as exc:
                if not follow:
                    fail(f"{exc.code}: {exc.message} (run again to resume)")
                err_console.print(f"{exc.message}; retrying", markup=False)
            if not follow:
                return
            time.sleep(interval)
    except KeyboardInterrupt:
        return
    finally:
        store.close()
