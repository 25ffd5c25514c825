"""Where a policy sits in its file: line, column and source text of the n-th statement.

The loader keeps each policy's file and index (``PolicyInfo.source``/``index``), not its text:
the explanation of a decision ("why was this denied") reads the file again and cuts out the
statement. Cedar statements end with ``;`` outside string literals and ``//`` comments, and
Cedar has no block comments, so a small scanner finds them without a second parse.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PolicySource:
    line: int  # 1-based line of the statement's first token (its first annotation)
    column: int  # 1-based
    text: str  # the statement, annotations and trailing ``;`` included


def statements(text: str) -> list[PolicySource]:
    """Every statement of a Cedar file in source order."""
    found: list[PolicySource] = []
    start: int | None = None
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "/" and text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        if ch.isspace():
            i += 1
            continue
        if start is None:
            start = i
        if ch == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif ch == ";":
            found.append(_at(text, start, i + 1))
            start = None
        i += 1
    return found


def locate(text: str, index: int) -> PolicySource | None:
    """The ``index``-th statement (from 0) of ``text``, or None when the file has fewer."""
    found = statements(text)
    return found[index] if 0 <= index < len(found) else None


def _at(text: str, start: int, end: int) -> PolicySource:
    line = text.count("\n", 0, start) + 1
    column = start - (text.rfind("\n", 0, start) + 1) + 1
    return PolicySource(line=line, column=column, text=text[start:end])
