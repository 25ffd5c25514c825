"""``warden owners …``: accountable humans, ownership transfer, end dates, directory sync."""

from __future__ import annotations

import csv
import json
from pathlib import Path
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
    fail,
    joined,
    print_json,
    show_list,
    when,
)
from warden.cli.timeparse import parse_since

app = typer.Typer(help="Accountable owners of agents, and their lifecycle.", no_args_is_help=True)

ReasonOption = Annotated[str, typer.Option("--reason", help="Why (recorded in the audit log).")]


def _governance(view: dict[str, Any]) -> None:
    owners = ", ".join(
        f"{o['id']} ({o['status']}{', primary' if o['primary'] else ''})" for o in view["owners"]
    )
    console.print(f"{view['agent']} [{view['status']}] owners: {owners}", markup=False)
    for label, key in (
        ("orphaned since", "orphaned_at"),
        ("end date", "end_date"),
        ("flagged", "flagged_at"),
        ("last used", "last_used_at"),
        ("last certified", "last_certified_at"),
    ):
        if view.get(key):
            extra = f" ({view['flag_reason']})" if key == "flagged_at" else ""
            console.print(f"  {label}: {when(view[key])}{extra}", markup=False)


@app.command("list")
def list_owners(
    status: Annotated[str | None, typer.Option("--status", help="active or inactive")] = None,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """List owners."""
    with WardenClient(url, data_dir) as client:
        body = client.get("/v1/owners", status=status, limit=1000)
    show_list(
        body,
        "owners",
        [col("id"), col("status"), col("name", "display_name"), col("since", "created_at", when)],
        as_json=as_json,
    )


@app.command("show")
def show(
    human_id: Annotated[str, typer.Argument(help="The owner's id (e-mail).")],
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """An owner and the agents they own."""
    with WardenClient(url, data_dir) as client:
        body = client.get(f"/v1/owners/{seg(human_id)}")
    if as_json:
        print_json(body)
        return
    console.print(
        f"{body['id']} [{body['status']}] owns: {joined(body['agents'], ', ') or '—'}", markup=False
    )


@app.command("add")
def add(
    human_id: Annotated[str, typer.Argument(help="The owner's id (e-mail).")],
    name: Annotated[str, typer.Option("--name", help="Display name.")] = "",
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Add an owner (active)."""
    with WardenClient(url, data_dir) as client:
        body = client.post("/v1/owners", {"id": human_id, "display_name": name})
    console.print(f"{body['id']} is an owner ({body['status']})", markup=False)


@app.command("deactivate")
def deactivate(
    human_id: Annotated[str, typer.Argument(help="The owner's id.")],
    reason: ReasonOption = "",
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Mark an owner inactive: co-owners take over, agents with no active owner are orphaned."""
    with WardenClient(url, data_dir) as client:
        body = client.post(f"/v1/owners/{seg(human_id)}/deactivate", {"reason": reason})
    if as_json:
        print_json(body)
        return
    console.print(
        f"{human_id} is inactive; promoted co-owners on: {joined(body['promoted'], ', ') or '—'}; "
        f"orphaned: {joined(body['orphaned'], ', ') or '—'}",
        markup=False,
    )


@app.command("reactivate")
def reactivate(
    human_id: Annotated[str, typer.Argument(help="The owner's id.")],
    reason: ReasonOption = "",
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Mark an owner active again (their orphaned agents are re-owned)."""
    with WardenClient(url, data_dir) as client:
        body = client.post(f"/v1/owners/{seg(human_id)}/reactivate", {"reason": reason})
    console.print(
        f"{human_id} is active; re-owned: {joined(body['reowned'], ', ') or '—'}", markup=False
    )


def _read_directory(path: Path) -> list[dict[str, Any]]:
    """A JSON list of {id, status, display_name} or a CSV with those columns."""
    try:
        text = path.read_text()
    except OSError as exc:
        fail(f"cannot read `{path}`: {exc.strerror or exc}")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            fail(f"`{path}` is not valid json: {exc}")
        if isinstance(data, dict):
            data = data.get("humans")
        if not isinstance(data, list):
            fail(f"`{path}` must hold a list of {{id, status}} objects")
        return data
    rows = list(csv.DictReader(text.splitlines()))
    if rows and "id" not in rows[0]:
        fail(f"`{path}` needs an `id` column (and optionally `status`, `display_name`)")
    return [
        {k: v for k, v in row.items() if k in ("id", "status", "display_name") and v}
        for row in rows
    ]


@app.command("sync")
def sync(
    path: Annotated[Path, typer.Argument(help="Directory export: .json or .csv (id,status).")],
    full: Annotated[
        bool, typer.Option("--full", help="The export is the whole directory: deactivate the rest.")
    ] = False,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Apply a directory export: create, deactivate and reactivate owners."""
    entries = _read_directory(path)
    with WardenClient(url, data_dir) as client:
        body = client.post("/v1/owners/sync", {"humans": entries, "full": full})
    if as_json:
        print_json(body)
        return
    console.print(
        f"{body['entries']} entries: created {len(body['created'])}, deactivated "
        f"{len(body['deactivated'])}, reactivated {len(body['reactivated'])}",
        markup=False,
    )


@app.command("transfer")
def transfer(
    agent: Annotated[str, typer.Argument(help="The agent.")],
    to: Annotated[list[str], typer.Option("--to", help="New owner; repeat for co-owners.")],
    reason: ReasonOption = "",
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Give an agent new owners (the first is primary); each must be a known, active human."""
    with WardenClient(url, data_dir) as client:
        body = client.post(f"/v1/agents/{seg(agent)}/owners", {"owners": to, "reason": reason})
    if as_json:
        print_json(body)
        return
    _governance(body)


@app.command("end-date")
def end_date(
    agent: Annotated[str, typer.Argument(help="The agent.")],
    date: Annotated[str, typer.Argument(help="ISO date/time or epoch seconds; `none` clears it.")],
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Declare when an agent's use ends (it is flagged then suspended after that)."""
    value: float | None = None
    if date.lower() != "none":
        try:
            value = parse_since(date)
        except ValueError as exc:
            fail(str(exc))
    with WardenClient(url, data_dir) as client:
        body = client.patch(f"/v1/agents/{seg(agent)}/governance", {"end_date": value})
    _governance(body)


@app.command("status")
def status(
    agent: Annotated[str, typer.Argument(help="The agent.")],
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """An agent's owners and lifecycle state."""
    with WardenClient(url, data_dir) as client:
        body = client.get(f"/v1/agents/{seg(agent)}/governance")
    if as_json:
        print_json(body)
        return
    _governance(body)
