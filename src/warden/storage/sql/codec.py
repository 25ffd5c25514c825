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


def load_tuple(text: str) -> tuple[str, ...]:
    return tuple(json.loads(text))
