"""The value checks every section parser shares: durations, lists of strings, integers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from warden.core.duration import parse_duration
from warden.errors import InvalidParameterError

# a path from the YAML file, relative to the file's folder unless absolute
Rel = Callable[[str], Path]


def duration(value: Any, key: str) -> float:
    """Accept seconds (number) or a string like ``90s``, ``5m``, ``2h``, ``1d``."""
    try:
        return parse_duration(value)
    except ValueError:
        raise InvalidParameterError(
            f"config `{key}` must be a duration like `300`, `5m` or `1h`"
        ) from None


def strings(value: Any, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise InvalidParameterError(f"config `{key}` must be a list of strings")
    return tuple(value)


def integer(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidParameterError(f"config `{key}` must be a non-negative integer")
    return value


def section(raw: dict[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name) or {}
    if not isinstance(value, dict):
        raise InvalidParameterError(f"config `{name}` must be a mapping")
    return value
