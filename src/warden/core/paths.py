"""One canonical form for the request paths forward-auth decides on (ADR 0082).

A proxy, Warden and the upstream must read a path the same way, or a rule written for
``/api/tickets*`` decides one path while the upstream serves another. ``canonical_path`` turns
the raw request target into the single form policies see, once, before any policy runs:

1. The target must be an origin-form absolute path (``/…``) of printable ASCII; the query is
   kept apart, untouched, and a fragment is refused.
2. Every ``%XX`` must be a valid escape. Escapes of unreserved characters (RFC 3986 §2.3:
   letters, digits, ``-._~``) are decoded (§6.2.2.2); every other escape is kept, its hex in
   upper case (§6.2.2.1).
3. Dot segments are removed as RFC 3986 §5.2.4 says, after that decoding (so ``%2e%2e`` is
   ``..``).

What has no single reading is refused with ``InvalidParameterError`` (400, detail reason
``unsafe_path``), never decided: an encoded
``/`` or ``\\`` (``%2F``, ``%5C``: one component to a proxy, two to many frameworks), a raw
``\\`` (a separator to some servers), NUL or any control character, raw or encoded, ``;`` path
parameters (``..;/`` is a dot segment to Tomcat-style servers), an empty segment (``//``:
merged by some proxies, and ``//host/…`` is scheme-relative), and non-ASCII bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from warden.errors import InvalidParameterError

__all__ = ["MAX_PATH", "CanonicalPath", "canonical_path", "remove_dot_segments"]

MAX_PATH = 4096
_HEX = frozenset("0123456789abcdefABCDEF")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_SEPARATOR_ESCAPES = {0x2F: "an encoded `/`", 0x5C: "an encoded `\\`"}


@dataclass(frozen=True, slots=True)
class CanonicalPath:
    raw: str  # the request target as received
    path: str  # what policies see
    query: str  # after ``?``, untouched ('' when none)


def _refuse(why: str) -> InvalidParameterError:
    return InvalidParameterError(
        f"the request path is refused: {why}", detail={"field": "path", "reason": "unsafe_path"}
    )


def _decode_unreserved(path: str) -> str:
    out: list[str] = []
    i, n = 0, len(path)
    while i < n:
        c = path[i]
        if c != "%":
            out.append(c)
            i += 1
            continue
        pair = path[i + 1 : i + 3]
        if len(pair) != 2 or not set(pair) <= _HEX:
            raise _refuse("a malformed percent-escape")
        value = int(pair, 16)
        if value < 0x20 or value == 0x7F:
            raise _refuse("an encoded control character")
        if value in _SEPARATOR_ESCAPES:
            raise _refuse(_SEPARATOR_ESCAPES[value])
        if chr(value) == ";":
            raise _refuse("an encoded `;`")
        char = chr(value)
        out.append(char if char in _UNRESERVED else f"%{pair.upper()}")
        i += 3
    return "".join(out)


def remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4 for an absolute path (``/…``)."""
    output: list[str] = []
    segments = path.split("/")[1:]
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == ".":
            if last:
                output.append("")
        elif segment == "..":
            if output:
                output.pop()
            if last:
                output.append("")
        else:
            output.append(segment)
    return "/" + "/".join(output)


def canonical_path(target: str) -> CanonicalPath:
    """The canonical path (and untouched query) of a raw origin-form request target."""
    if not isinstance(target, str) or not target:
        raise _refuse("it is empty")
    if len(target) > MAX_PATH:
        raise _refuse(f"it is longer than {MAX_PATH} characters")
    for c in target:
        if ord(c) < 0x21 or ord(c) > 0x7E:
            raise _refuse("a control, space or non-ASCII character (send it percent-encoded)")
    if "#" in target:
        raise _refuse("a fragment")
    path, _, query = target.partition("?")
    if not path.startswith("/"):
        raise _refuse("it is not an absolute path")
    if "\\" in path:
        raise _refuse("a backslash")
    if ";" in path:
        raise _refuse("a `;` path parameter")
    decoded = _decode_unreserved(path)
    if "//" in decoded:
        raise _refuse("an empty segment (`//`)")
    return CanonicalPath(raw=target, path=remove_dot_segments(decoded), query=query)
