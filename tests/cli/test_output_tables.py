"""``cli.output``'s table helper: one way every list command prints (people: a table; ``--json``:
the server's answer as it came)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from warden.cli import output
from warden.cli.output import col, more_after, more_by_limit, show_list, when, when_set


@pytest.fixture
def printed(capsys: pytest.CaptureFixture[str]) -> Any:
    def read() -> str:
        return str(capsys.readouterr().out)

    return read


COLUMNS = [col("id"), col("created", "created_at", when), col("expires", "expires_at", when_set)]


def test_json_is_the_page_as_it_came(printed: Any) -> None:
    page = {"items": [{"id": "a", "created_at": 0}], "next": "b"}
    show_list(page, "items", COLUMNS, as_json=True, empty="none", more=more_by_limit)
    assert json.loads(printed()) == page


def test_a_table_of_the_columns_with_the_more_hint(printed: Any) -> None:
    page = {"items": [{"id": "a", "created_at": 0, "expires_at": 0}], "next": "b"}
    show_list(page, "items", COLUMNS, as_json=False, empty="none", more=more_by_limit)
    out = printed()
    assert [h in out for h in ("id", "created", "expires")] == [True] * 3
    assert "1970-01-01 00:00:00Z" in out  # `when` formats 0; `when_set` leaves it empty
    assert out.count("1970") == 1
    assert "(more: first 1 shown; use --limit)" in out


def test_nothing_to_list_prints_the_empty_line_and_no_hint(printed: Any) -> None:
    show_list({"items": [], "next": "b"}, "items", COLUMNS, as_json=False, empty="no items")
    assert printed().strip() == "no items"


def test_the_after_hint_names_the_next_page(printed: Any) -> None:
    page = {"records": [{"id": "a"}], "next": 42}
    show_list(page, "records", COLUMNS, as_json=False, more=more_after)
    assert "(more: continue with --after 42)" in printed()


def test_cells_are_plain_text_never_markup(printed: Any) -> None:
    output.show_table([{"id": "[bold]x[/]"}], [col("id")])
    assert "[bold]x[/]" in printed()
