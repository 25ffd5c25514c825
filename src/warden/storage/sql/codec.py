"""How JSON-ish values are stored in TEXT columns (see ``tables.py``): canonical JSON."""

from __future__ import annotations

import json
from typing import Any

import orjson


def dump(value: Any) -> str:
    """Canonical JSON: sorted keys, no whitespace (so stored text round-trips byte for byte).

    orjson first: the audit writer encodes every record, and orjson is several times faster than
    the stdlib encoder; values it refuses (integers past 64 bits, non-string keys) fall back to the
    stdlib encoder, which decides as before.
    """
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(value, sort_keys=True, separators=(",", ":"))


def round_trip(value: Any) -> tuple[str, Any]:
    """``value`` as stored, and as it will read back (the form the audit chain must hash).

    Each text is decoded by the library that wrote it: orjson never writes integers past 64 bits
    (those take the stdlib path), so its output reads back identically with ``json.loads``.
    """
    try:
        text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        text = json.dumps(value, sort_keys=True, separators=(",", ":"))
        return text, json.loads(text)
    return text, orjson.loads(text)


def load_tuple(text: str) -> tuple[str, ...]:
    return tuple(json.loads(text))
