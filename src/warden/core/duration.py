"""Durations written by people: seconds, or ``90s``, ``10m``, ``2h``, ``1d``."""

from __future__ import annotations

import math
from typing import Any

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any) -> float:
    """Seconds for ``value`` (a number, or a string with an optional unit); ValueError if not.

    Negative, infinite and NaN durations are refused.
    """
    seconds: float | None = None
    if isinstance(value, bool):
        seconds = None
    elif isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            if text[-1] in UNITS:
                seconds = float(text[:-1]) * UNITS[text[-1]]
            else:
                seconds = float(text)
        except ValueError:
            seconds = None
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"`{value}` is not a duration: use seconds, or 90s, 10m, 2h, 1d")
    return seconds
