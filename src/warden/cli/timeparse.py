"""Parsing ``--since`` values: epoch seconds, an ISO 8601 time, or a duration ago (``15m``)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(value: str | None, *, now: float | None = None) -> float | None:
    """Epoch seconds for ``value``; raises ValueError with a readable message."""
    if value is None or value == "":
        return None
    text = value.strip()
    if text and text[-1] in UNITS:
        try:
            amount = float(text[:-1])
        except ValueError:
            amount = -1.0
        if amount >= 0:
            return (time.time() if now is None else now) - amount * UNITS[text[-1]]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"`{value}` is not a time: use epoch seconds, an ISO 8601 time or a duration "
            "ago such as 15m, 2h, 1d"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def parse_duration(value: str) -> float:
    """Seconds from ``90``, ``90s``, ``10m``, ``2h`` or ``1d``; ValueError otherwise."""
    text = value.strip()
    scale = UNITS.get(text[-1:], None)
    number = text[:-1] if scale is not None else text
    try:
        amount = float(number) * (scale or 1)
    except ValueError:
        raise ValueError(f"`{value}` is not a duration: use 90s, 10m, 2h or 1d") from None
    if not amount > 0:
        raise ValueError(f"`{value}` is not a positive duration")
    return amount
