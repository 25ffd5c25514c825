"""``warden approvals …``: list, show, approve, deny and wait for step-up approval requests.

Approving shows exactly what is approved (agent, task, action, resource, arguments and the
digest binding them) and sends that digest with the approval, so the record says what the
approver saw. Use your own operator token (``WARDEN_TOKEN``): an account linked to you.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

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
    esc,
    fail,
    or_empty,
    print_json,
    show_record,
    show_table,
    when,
)

app = typer.Typer(
    help="Step-up approval requests: list, show, approve, deny.", no_args_is_help=True
)

IdArg = Annotated[str, typer.Argument(help="The approval request id (apr_…).")]

FIELDS = [
    ("id", "id"),
    ("status", "status"),
    ("agent", "agent"),
    ("owner", "owner"),
    ("task", "task_id"),
    ("on behalf of", "on_behalf_of"),
    ("action", "action"),
    ("resource", "resource"),
    ("arguments", "arguments"),
    ("policies", "policies"),
    ("approvers", "chain"),
    ("awaiting", "awaiting"),
    ("escalates", "escalate_at"),
    ("expires", "expires_at"),
    ("decided by", "decided_by"),
    ("decided", "decided_at"),
    ("reason", "decision_reason"),
    ("grant until", "grant_expires_at"),
    ("used", "used_at"),
    ("digest", "digest"),
]


def _resource(r: dict[str, Any]) -> str:
    res = r.get("resource") or {}
    return f"{res.get('type', '')}::{res.get('id', '')}"


def _show(r: dict[str, Any]) -> None:
    shown = {**r, "resource": _resource(r), "chain": " > ".join(r.get("chain") or [])}
    show_record(shown, FIELDS)


@app.command("list")
def list_approvals(
    status: Annotated[
        str | None,
        typer.Option("--status", help="pending, approved, denied, expired or cancelled."),
    ] = None,
    agent: Annotated[str | None, typer.Option("--agent", help="Only this agent's.")] = None,
    mine: Annotated[
        bool, typer.Option("--mine", help="Only pending requests you may decide now.")
    ] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 100,
    watch: Annotated[
        bool,
        typer.Option("--watch", help="Then print each new or changed request as it happens."),
    ] = False,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """List approval requests, newest first (``--watch``: then follow them live)."""
    with WardenClient(url, data_dir) as client:
        page = client.get(
            "/v1/approvals",
            status=status,
            agent=agent,
            mine="true" if mine else None,
            limit=limit,
        )
        if as_json and not watch:
            print_json(page)
            return
        if as_json:  # JSON lines: the current requests, then one per change
            for r in page.get("approvals", []):
                typer.echo(json.dumps({"event": "listed", **r}, ensure_ascii=False))
        else:
            _table(page.get("approvals", []))
        if watch:
            _watch(client, agent=agent, mine=mine, as_json=as_json)


def _watch(client: WardenClient, *, agent: str | None, mine: bool, as_json: bool) -> None:
    """Follow the approvals stream; one line (or JSON object) per change, until Ctrl-C."""
    if not as_json:
        console.print("watching for approval requests (Ctrl-C to stop)…")
    try:
        for event in client.events("/v1/approvals/stream"):
            rid = event.get("request_id")
            if not isinstance(rid, str) or (agent and event.get("agent") != agent):
                continue
            r = client.get(f"/v1/approvals/{seg(rid)}")
            if mine and r["status"] == "pending" and event.get("type") == "approval.requested":
                eligible = client.get("/v1/approvals", mine="true", agent=r["agent"], limit=1000)
                if rid not in {x["id"] for x in eligible.get("approvals", [])}:
                    continue
            if as_json:
                typer.echo(json.dumps({"event": event.get("type"), **r}, ensure_ascii=False))
                continue
            args = json.dumps(r.get("arguments") or {}, ensure_ascii=False)
            console.print(
                f"{when(event.get('ts'))}  {event.get('type', '')}  {r['id']}  {r['agent']}  "
                f"{r['action']} on {_resource(r)}  {args}  awaiting {r.get('awaiting') or '-'}",
                markup=False,
            )
    except KeyboardInterrupt:
        return


APPROVAL_COLUMNS = (
    col("id"),
    Column("status", lambda r: r["status"] + (" (used)" if r.get("used") else "")),
    col("agent"),
    col("action"),
    Column("resource", lambda r: _resource(r)),
    col("awaiting", fmt=or_empty),
    col("created", "created_at", when),
)


def _table(items: list[dict[str, Any]]) -> None:
    show_table(items, APPROVAL_COLUMNS, empty="no approval requests")


@app.command("show")
def show(
    request_id: IdArg,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Show one approval request."""
    with WardenClient(url, data_dir) as client:
        r = client.get(f"/v1/approvals/{seg(request_id)}")
    if as_json:
        print_json(r)
    else:
        _show(r)


def _decide(
    request_id: str,
    verb: str,
    reason: str,
    digest: str | None,
    as_json: bool,
    url: str,
    data_dir: Any,
) -> None:
    with WardenClient(url, data_dir) as client:
        current = client.get(f"/v1/approvals/{seg(request_id)}")
        if digest is not None and digest != current.get("digest"):
            fail(
                "the request is not the action you confirmed: its digest is "
                f"{current.get('digest')}, you gave {digest}"
            )
        if not as_json:
            console.print(f"[bold]{verb.capitalize()}[/] this exact action:")
            console.print(
                f"  agent {esc(current['agent'])} (task {esc(current['task_id'])}) calls "
                f"[bold]{esc(current['action'])}[/] on {esc(_resource(current))}"
            )
            console.print(
                "  arguments " + esc(json.dumps(current.get("arguments"), ensure_ascii=False))
            )
            console.print(f"  digest    {esc(current['digest'])}")
        body = {"reason": reason, "digest": current["digest"]}
        decided = client.post(f"/v1/approvals/{seg(request_id)}/{verb}", body)
    if as_json:
        print_json(decided)
        return
    if decided["status"] == "approved":
        console.print(
            f"approved [bold]{esc(decided['id'])}[/]: a one-time grant for this action until "
            f"{when(decided.get('grant_expires_at'))}"
        )
    else:
        console.print(f"denied [bold]{esc(decided['id'])}[/]")


@app.command("approve")
def approve(
    request_id: IdArg,
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded).")] = "",
    digest: Annotated[
        str | None,
        typer.Option("--digest", help="Only approve if the request still has this digest."),
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Approve one pending request: a one-time grant for exactly that action."""
    _decide(request_id, "approve", reason, digest, as_json, url, data_dir)


@app.command("deny")
def deny(
    request_id: IdArg,
    reason: Annotated[str, typer.Option("--reason", help="Why (required, recorded).")],
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Deny one pending request."""
    _decide(request_id, "deny", reason, None, as_json, url, data_dir)
