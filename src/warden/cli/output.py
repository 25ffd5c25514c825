"""Console output shared by the commands: rich tables for people, ``--json`` for programs."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a list: its header and how a row's cell is read from the item."""

    header: str
    cell: Callable[[Any], Any]


def col(header: str, key: str | None = None, fmt: Callable[[Any], Any] | None = None) -> Column:
    """A column showing ``item.get(key)`` (``key`` defaults to the header), through ``fmt``."""
    name = header if key is None else key
    if fmt is None:
        return Column(header, lambda item: item.get(name))
    return Column(header, lambda item: fmt(item.get(name)))


def when_set(ts: Any) -> str:
    """``when``, but empty for any unset value (0, "" or None)."""
    return when(ts) if ts else ""


def or_empty(value: Any) -> Any:
    """The value, or empty text for any falsy one."""
    return value or ""


def more_by_limit(page: Mapping[str, Any], shown: int) -> str:
    return f"(more: first {shown} shown; use --limit)"


def more_after(page: Mapping[str, Any], shown: int) -> str:
    return f"(more: continue with --after {page['next']})"


def show_table(
    items: Sequence[Any],
    columns: Sequence[Column],
    *,
    empty: str | None = None,
    title: str | None = None,
) -> None:
    """Print ``items`` as a table of ``columns``; when there are none and ``empty`` is given,
    print that (console markup) instead."""
    if not items and empty is not None:
        console.print(empty)
        return
    emit(
        table(
            [c.header for c in columns],
            [[c.cell(item) for c in columns] for item in items],
            title=title,
        )
    )


def show_list(
    page: Mapping[str, Any],
    key: str,
    columns: Sequence[Column],
    *,
    as_json: bool,
    empty: str | None = None,
    title: str | None = None,
    more: Callable[[Mapping[str, Any], int], str] | None = None,
) -> None:
    """What a list command prints: the server's answer as it is under ``--json``; otherwise the
    items under ``key`` as a table (``empty`` when there are none), and ``more``'s hint when the
    answer says there is a next page."""
    if as_json:
        print_json(page)
        return
    items = page.get(key, [])
    show_table(items, columns, empty=empty, title=title)
    if items and more is not None and page.get("next"):
        console.print(more(page, len(items)))


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
