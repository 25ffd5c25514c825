"""Text from the server is printed as it is: never as Rich markup, never as emoji."""

from __future__ import annotations

import ast
import io
from pathlib import Path

import pytest
from rich.console import Console

from warden.cli import output

TRICKY = ["spiffe://example.org/agent/a:smile:", "[bold red]not markup[/]", ":id: [link=x]y[/link]"]


def test_tables_and_records_print_data_verbatim(monkeypatch: pytest.MonkeyPatch) -> None:
    buffer = io.StringIO()
    plain = Console(file=buffer, width=200, emoji=False, highlight=False, color_system=None)
    monkeypatch.setattr(output, "console", plain)
    output.emit(output.table(["value"], [[t] for t in TRICKY]))
    output.show_record({"a": TRICKY[0], "b": TRICKY[1]}, [("a", "a"), ("b", "b")])
    text = buffer.getvalue()
    for tricky in TRICKY:
        assert tricky in text, (tricky, text)
    assert "😄" not in text and "🆔" not in text


def test_the_shared_consoles_have_emoji_off() -> None:
    assert output.console._emoji is False
    assert output.err_console._emoji is False


def test_every_rich_console_the_cli_creates_has_emoji_off() -> None:
    """Not only the shared two: any ``Console(...)`` in the package turns emoji codes off,
    so ``spiffe:id:`` or a purpose with ``:smile:`` is never drawn as a picture."""
    package = Path(output.__file__).resolve().parents[1]
    made = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Console":
                emoji = next((k.value for k in node.keywords if k.arg == "emoji"), None)
                made.append((f"{path.relative_to(package)}:{node.lineno}", emoji))
    assert len(made) >= 3, made
    for where, emoji in made:
        assert isinstance(emoji, ast.Constant) and emoji.value is False, where
