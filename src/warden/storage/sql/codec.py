"""How JSON-ish values are stored in TEXT columns (see ``tables.py``): canonical JSON."""

from __future__ import annotations

import json
from typing import Any


def dump(value: Any) -> str:
    """Canonical JSON: sorted keys, no whitespace (so stored text round-trips byte for byte)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def load_tuple(text: str) -> tuple[str, ...]:
    return tuple(json.loads(text))
