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
from warden.cli.output import console, emit, esc, print_json, table, when

app = typer.Typer(help="Signing keys: rotate, and see which are published.", no_args_is_help=True)


def _rows(keys: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    return [
        (
            str(k["generation"]),
            k["kid"],
            k["status"],
            when(k.get("created_at")),
            when(k.get("retires_after")) if k.get("retires_after") else "",
            when(k.get("retired_at")) if k.get("retired_at") else "",
        )
        for k in keys
    ]


def _show(keys: list[dict[str, Any]]) -> None:
    emit(table(["gen", "kid", "status", "created", "retires after", "retired"], _rows(keys)))


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
    if as_json:
        print_json(body)
        return
    _show(body.get("keys", []))
