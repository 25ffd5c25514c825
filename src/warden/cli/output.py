"""Console output shared by the commands: rich tables for people, ``--json`` for programs."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

console = Console(highlight=False, soft_wrap=True, emoji=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: <message>`` on stderr and exit with ``code``."""
    err_console.print(f"error: {message}", markup=False)
    raise typer.Exit(code)


def print_json(data: Any) -> None:
    """Raw JSON on stdout (no colour, no wrapping): for ``--json`` and pipes."""
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False))


def when(ts: Any) -> str:
    """Epoch seconds as a short UTC time; empty for missing values."""
    if ts is None or ts == "":
        return ""
    try:
        return datetime.fromtimestamp(float(ts), tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    except (TypeError, ValueError, OverflowError):
        return str(ts)


def joined(values: Any, sep: str = " ") -> str:
    if values is None:
        return ""
    if isinstance(values, str):
        return values
    if isinstance(values, Iterable):
        return sep.join(str(v) for v in values)
    return str(values)


PIPE_WIDTH = 240  # tables sent to a pipe or file are not squeezed into 80 columns


def emit(renderable: Any) -> None:
    """Print a table (or any renderable): terminal width on a terminal, wide otherwise."""
    if console.is_terminal:
        console.print(renderable)
        return
    wide = Console(
        file=console.file, width=PIPE_WIDTH, highlight=False, soft_wrap=True, emoji=False
    )
    wide.print(renderable)


def table(
    columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None
) -> Table:
    t = Table(title=title, show_edge=False, header_style="bold", pad_edge=False)
    for name in columns:
        t.add_column(name, overflow="fold")
    for row in rows:
        # cells are plain text: user data such as `[bold]` or `:id:` is never markup or emoji
        t.add_row(*(v if isinstance(v, Text) else Text("" if v is None else str(v)) for v in row))
    return t


def show_record(data: Mapping[str, Any], fields: Sequence[tuple[str, str]]) -> None:
    """A two-column key/value view of one object; ``fields`` are (label, key) pairs."""
    t = Table(show_header=False, show_edge=False, box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column(overflow="fold")
    for label, key in fields:
        value = data.get(key)
        if key.endswith("_at") or key == "ts":
            text = when(value)
        elif isinstance(value, list | tuple):
            text = joined(value)
        elif isinstance(value, dict):
            text = json.dumps(value, ensure_ascii=False) if value else ""
        else:
            text = "" if value is None else str(value)
        t.add_row(label, Text(text))
    emit(t)


def esc(value: Any) -> str:
    """Text from the server, safe inside rich markup."""
    return escape(str(value))
