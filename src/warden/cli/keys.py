"""``warden keys …``: the signing keys (rotate, list)."""

from __future__ import annotations

from typing import Any

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
    print_json,
    show_list,
    show_table,
    when,
    when_set,
)

app = typer.Typer(help="Signing keys: rotate, and see which are published.", no_args_is_help=True)


KEY_COLUMNS = (
    col("gen", "generation"),
    col("kid"),
    col("status"),
    col("created", "created_at", when),
    col("retires after", "retires_after", when_set),
    col("retired", "retired_at", when_set),
)


def _show(keys: list[dict[str, Any]]) -> None:
    show_table(keys, KEY_COLUMNS)


@app.command("rotate")
def rotate(
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Make a new key the one that signs. Older keys stay published (JWKS) until everything
    they signed has expired, then retire on their own."""
    with WardenClient(url, data_dir) as client:
        body = client.post("/v1/keys/rotate")
    if as_json:
        print_json(body)
        return
    console.print(f"new signing key [bold]{esc(body['current'])}[/]; every replica picks it up")
    _show(body.get("keys", []))


@app.command("list")
def list_keys(
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Every signing key: current, published (still verifying), or retired."""
    with WardenClient(url, data_dir) as client:
        body = client.get("/v1/keys")
    show_list(body, "keys", KEY_COLUMNS, as_json=as_json)
