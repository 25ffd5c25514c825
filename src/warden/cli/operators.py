"""``warden operators …``: operator accounts (admins only). Tokens are shown once."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

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
    col,
    console,
    esc,
    or_empty,
    print_json,
    show_list,
    when,
    when_set,
)

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
    show_list(
        page,
        "operators",
        [
            col("id"),
            col("name"),
            col("role"),
            col("person", "human", or_empty),
            col("created", "created_at", when),
            col("disabled", fmt=lambda v: "yes" if v else ""),
            col("expires", "expires_at", when_set),
        ],
        as_json=as_json,
    )


@app.command("disable")
def disable(
    name: Annotated[str, typer.Argument(help="The operator to disable.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the audit log).")] = "",
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Disable an operator: its token is refused from now on, on every replica."""
    with WardenClient(url, data_dir) as client:
        op = client.post(f"/v1/operators/{quote(name, safe='')}/disable", {"reason": reason})
    if as_json:
        print_json(op)
        return
    console.print(f"disabled [bold]{esc(op['name'])}[/] ({op['id']})")


@app.command("rotate")
def rotate(
    name: Annotated[str, typer.Argument(help="The operator whose token to replace.")],
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Replace an operator's token; prints the new one once (the old one stops working)."""
    with WardenClient(url, data_dir) as client:
        op = client.post(f"/v1/operators/{quote(name, safe='')}/rotate", {})
    if as_json:
        print_json(op)
        return
    console.print(
        f"rotated [bold]{esc(op['name'])}[/] ({op['id']}), expires {when(op['expires_at'])}"
    )
    console.print("token (shown once):")
    typer.echo(op["token"])
