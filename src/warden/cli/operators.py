"""``warden operators …``: operator accounts (admins only). Tokens are shown once."""

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
from warden.cli.output import console, emit, esc, print_json, table, when

app = typer.Typer(help="Operator accounts (admins only).", no_args_is_help=True)


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="A name for the account.")],
    role: Annotated[
        str,
        typer.Option(
            "--role", help="admin, approver, auditor or pep (a PEP: may only call the PDP)."
        ),
    ] = "approver",
    human: Annotated[
        str | None,
        typer.Option("--human", help="The person behind it (e.g. an agent owner's email)."),
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Create an operator; prints its bearer token once (store it, it is not kept)."""
    body = {"name": name, "role": role, **({"human": human} if human else {})}
    with WardenClient(url, data_dir) as client:
        op = client.post("/v1/operators", body)
    if as_json:
        print_json(op)
        return
    linked = f" for {esc(op['human'])}" if op.get("human") else ""
    console.print(f"created {esc(op['role'])} [bold]{esc(op['name'])}[/]{linked} ({op['id']})")
    console.print("token (shown once):")
    typer.echo(op["token"])


@app.command("list")
def list_operators(
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """List operator accounts (never their tokens)."""
    with WardenClient(url, data_dir) as client:
        page = client.get("/v1/operators")
    if as_json:
        print_json(page)
        return
    emit(
        table(
            ["id", "name", "role", "person", "created", "disabled"],
            [
                (
                    o["id"],
                    o["name"],
                    o["role"],
                    o.get("human") or "",
                    when(o["created_at"]),
                    "yes" if o["disabled"] else "",
                )
                for o in page.get("operators", [])
            ],
        )
    )
