"""Where a problem is in a Cedar file: line, column and the offending snippet.

cedarpy reports parse and validation errors without a position, so Warden finds it itself:

* a small lexer (identifiers, numbers, strings, ``//`` comments, punctuation) splits a file
  into statements at top-level ``;`` — Cedar numbers policies ``policy0``, ``policy1``, … in
  that order, so a validation error's policy id maps to a statement;
* a parse error is pinned to the first token where it happens: each statement is parsed on
  its own (so every bad statement of a file is reported, not just the first), then the
  shortest prefix of whole tokens that fails with anything but "unexpected end of input"
  ends at the offending token (an LR parser stops at the first token it cannot shift, so the
  search is a bisection);
* an error that names something in backticks (``attribute `categroy` …``) is pointed at the
  first token of the statement with that name.

Positions are 1-based, columns count characters (not bytes), like Cedar's own CLI.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "PolicyProblem",
    "PolicySource",
    "Statement",
    "Token",
    "locate",
    "locate_in_statement",
    "locate_parse_errors",
    "names_in",
    "position",
    "snippet",
    "statements",
    "tokenize",
]

_EOF_MESSAGES = ("unexpected end of input",)
_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>//[^\n]*)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<ident>[_A-Za-z][_A-Za-z0-9]*)
  | (?P<number>[0-9]+)
  | (?P<op>::|==|!=|<=|>=|&&|\|\||[-+*/%<>!=.,;:(){}\[\]@?])
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # ident | number | string | op | bad
    text: str
    start: int  # character offsets into the file
    end: int


@dataclass(frozen=True, slots=True)
class Statement:
    """One policy (or template) of a file: its tokens up to and including its ``;``."""

    index: int
    tokens: tuple[Token, ...]

    @property
    def start(self) -> int:
        return self.tokens[0].start

    @property
    def end(self) -> int:
        return self.tokens[-1].end


@dataclass(frozen=True, slots=True)
class PolicyProblem:
    """One error a policy author can act on."""

    file: str
    line: int
    column: int
    snippet: str
    message: str
    policy: str | None = None
    kind: str = "parse"  # parse | policy | validation | schema | entities | file

    @property
    def headline(self) -> str:
        """The problem as one line naming its file (the ``PolicyError`` message)."""
        what = "cannot parse policies: " if self.kind == "parse" else ""
        return f"`{self.file}`: {what}{self.message}"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        who = f" policy `{self.policy}`:" if self.policy else ""
        return f"{where}:{who} {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "snippet": self.snippet,
            "message": self.message,
            "policy": self.policy,
            "kind": self.kind,
        }


def tokenize(text: str) -> list[Token]:
    """The tokens of ``text``; a character Cedar cannot start a token with is a ``bad`` token."""
    tokens: list[Token] = []
    pos = 0
    n = len(text)
    while pos < n:
        m = _TOKEN.search(text, pos)  # anchored below: a token must start at `pos`
        if m is not None and m.start() != pos:
            m = None
        if m is None:
            # an unterminated string runs to the end of the file; anything else is one char
            end = n if text[pos] == '"' else pos + 1
            tokens.append(Token("bad", text[pos:end], pos, end))
            pos = end
            continue
        kind = m.lastgroup or "op"
        if kind not in ("ws", "comment"):
            tokens.append(Token(kind, m.group(), pos, m.end()))
        pos = m.end()
    return tokens


def statements(tokens: list[Token]) -> list[Statement]:
    """Split tokens at top-level ``;`` (a trailing unterminated statement is kept)."""
    out: list[Statement] = []
    current: list[Token] = []
    depth = 0
    for tok in tokens:
        current.append(tok)
        if tok.kind == "op" and tok.text in "({[":
            depth += 1
        elif tok.kind == "op" and tok.text in ")}]":
            depth = max(0, depth - 1)
        elif tok.kind == "op" and tok.text == ";" and depth == 0:
            out.append(Statement(len(out), tuple(current)))
            current = []
    if current:
        out.append(Statement(len(out), tuple(current)))
    return out


def position(text: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of a character offset."""
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


def snippet(text: str, offset: int, width: int = 1) -> str:
    """The source line holding ``offset``, and a caret line under the offending text."""
    offset = max(0, min(offset, len(text)))
    start = text.rfind("\n", 0, offset) + 1
    end = text.find("\n", offset)
    if end < 0:
        end = len(text)
    line = text[start:end]
    shown = line[:200]
    col = offset - start
    width = max(1, min(width, len(line) - col if col < len(line) else 1, 80))
    return f"{shown}\n{' ' * min(col, 200)}{'^' * width}"


def _is_eof(message: str) -> bool:
    return any(m in message for m in _EOF_MESSAGES)


def _prefix_fails(
    text: str, stmt: Statement, k: int, parse: Callable[[str], str | None]
) -> str | None:
    """The error of parsing the statement's first ``k`` tokens, unless it is just truncation."""
    message = parse(text[stmt.start : stmt.tokens[k - 1].end])
    if message is None or _is_eof(message):
        return None
    return message


def _offending_token(text: str, stmt: Statement, parse: Callable[[str], str | None]) -> Token:
    for tok in stmt.tokens:
        if tok.kind == "bad":
            return tok
    lo, hi = 1, len(stmt.tokens)  # the whole statement fails; find the shortest failing prefix
    while lo < hi:
        mid = (lo + hi) // 2
        if _prefix_fails(text, stmt, mid, parse) is not None:
            hi = mid
        else:
            lo = mid + 1
    return stmt.tokens[lo - 1]


def names_in(message: str) -> list[str]:
    """What a Cedar message is about: backticked names, then a trailing ``: name``."""
    names = [n for n in re.findall(r"`([^`]+)`", message) if not n.startswith("policy")]
    tail = re.search(r":\s*@?([\w:\"]+)\s*$", message)
    if tail:
        names.append(tail.group(1))
    return names


def locate_in_statement(text: str, stmt: Statement, message: str) -> Token:
    """The token a message is about: a name it mentions, else the statement's effect.

    For a "duplicate …" message the last occurrence is the offending one.
    """
    duplicate = "duplicate" in message
    for name in names_in(message):
        last = name.split(".")[-1].split("::")[-1].strip('"')
        hits = [
            tok
            for tok in stmt.tokens
            if tok.text == last or (tok.kind == "string" and tok.text.strip('"') == last)
        ]
        if hits:
            return hits[-1] if duplicate else hits[0]
    for tok in stmt.tokens:
        if tok.kind == "ident" and tok.text in ("permit", "forbid"):
            return tok
    return stmt.tokens[0]


def locate_parse_errors(
    file: str, text: str, parse: Callable[[str], str | None], whole_error: str
) -> list[PolicyProblem]:
    """Every parse error of a file, each with its position.

    ``parse`` returns Cedar's message for a text, or None when it parses. ``whole_error`` is
    the error for the whole file (used when no single statement fails on its own).
    """
    stmts = statements(tokenize(text))
    problems: list[PolicyProblem] = []
    for stmt in stmts:
        message = parse(text[stmt.start : stmt.end])
        if message is None:
            continue
        if _is_eof(message) and stmt.tokens[-1].text != ";":
            tok = stmt.tokens[-1]
            offset, width = tok.end, 1
            message = f"{message} (is a `;` missing after this policy?)"
        else:
            tok = _offending_token(text, stmt, parse)
            if tok.text == ";" and not _is_eof(message):
                tok = locate_in_statement(text, stmt, message)
            offset, width = tok.start, len(tok.text)
        line, column = position(text, offset)
        problems.append(PolicyProblem(file, line, column, snippet(text, offset, width), message))
    if not problems:
        offset = len(text.rstrip())
        line, column = position(text, offset)
        problems.append(PolicyProblem(file, line, column, snippet(text, offset), whole_error))
    return problems


@dataclass(frozen=True, slots=True)
class PolicySource:
    """Where the n-th statement of a file sits, and its text (for explanations)."""

    line: int  # 1-based line of the statement's first token (its first annotation)
    column: int  # 1-based
    text: str  # the statement, annotations and trailing ``;`` included


def locate(text: str, index: int) -> PolicySource | None:
    """The ``index``-th complete statement (from 0) of ``text``, or None when there are fewer."""
    found = [s for s in statements(tokenize(text)) if s.tokens[-1].text == ";"]
    if not 0 <= index < len(found):
        return None
    stmt = found[index]
    line, column = position(text, stmt.start)
    return PolicySource(line, column, text[stmt.start : stmt.end])
