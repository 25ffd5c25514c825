"""``warden tasks …``: list, inspect and end tasks (ending a task revokes its credentials)."""

from __future__ import annotations

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
    col,
    console,
    esc,
    joined,
    more_by_limit,
    print_json,
    show_list,
    show_record,
    when,
)

app = typer.Typer(help="List, inspect and end tasks.", no_args_is_help=True)

TASK_FIELDS = [
    ("id", "id"),
    ("agent", "agent"),
    ("spiffe id", "spiffe_id"),
    ("status", "status"),
    ("purpose", "purpose"),
    ("category", "category"),
    ("requested", "requested_scope"),
    ("granted", "granted_scope"),
    ("audience", "audience"),
    ("parent", "parent_id"),
    ("on behalf of", "on_behalf_of"),
    ("created", "created_at"),
    ("expires", "expires_at"),
    ("ended", "ended_at"),
    ("end reason", "end_reason"),
    ("attestation", "attestation"),
]

IdArg = Annotated[str, typer.Argument(help="The task id.")]


@app.command("list")
def list_tasks(
    agent: Annotated[str | None, typer.Option("--agent", help="Only this agent's tasks.")] = None,
    status: Annotated[
        str | None,
        typer.Option("--status", help="active, completed, failed, expired or revoked."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 100,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """List tasks."""
    with WardenClient(url, data_dir) as client:
        page = client.get("/v1/tasks", agent=agent, status=status, limit=limit)
    show_list(
        page,
        "tasks",
        [
            col("id"),
            col("agent"),
            col("status"),
            col("purpose"),
            col("granted scope", "granted_scope", joined),
            col("created", "created_at", when),
            col("expires", "expires_at", when),
        ],
        as_json=as_json,
        empty="no tasks",
        more=more_by_limit,
    )


@app.command("show")
def show(
    task_id: IdArg,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Show one task."""
    with WardenClient(url, data_dir) as client:
        task = client.get(f"/v1/tasks/{seg(task_id)}")
    if as_json:
        print_json(task)
    else:
        show_record(task, TASK_FIELDS)


def _end(task_id: str, verb: str, reason: str, as_json: bool, url: str, data_dir: Any) -> None:
    with WardenClient(url, data_dir) as client:
        task = client.post(f"/v1/tasks/{seg(task_id)}/{verb}", {"reason": reason} if reason else {})
    if as_json:
        print_json(task)
        return
    console.print(
        f"task [bold]{esc(task['id'])}[/] of agent {esc(task['agent'])} is now "
        f"[bold]{esc(task['status'])}[/]; its credentials are revoked"
    )


@app.command("complete")
def complete(
    task_id: IdArg,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Mark a task completed (revokes its credentials and subtasks)."""
    _end(task_id, "complete", "", as_json, url, data_dir)


@app.command("fail")
def fail_task(
    task_id: IdArg,
    reason: Annotated[str, typer.Option("--reason", help="Why it failed.")] = "",
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Mark a task failed (revokes its credentials and subtasks)."""
    _end(task_id, "fail", reason, as_json, url, data_dir)


@app.command("revoke")
def revoke(
    task_id: IdArg,
    reason: Annotated[str, typer.Option("--reason", help="Why it was revoked.")] = "",
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Revoke a task now (kills its credentials and subtasks)."""
    _end(task_id, "revoke", reason, as_json, url, data_dir)
