"""Masking of values that must never reach the audit log or a response."""

from __future__ import annotations

import functools
import re
from typing import Any

_SECRET_KEY = re.compile(
    r"(token|secret|passw|credential|authorization|api[_-]?key|cookie|private)", re.I
)
MASK = "***"


@functools.lru_cache(maxsize=8192)  # records repeat a few keys; a regex search is ≈5k instructions
def is_secret_key(key: str) -> bool:
    """Is ``key`` the name of a value that must never be recorded?"""
    return bool(_SECRET_KEY.search(key))


def mask(value: Any, *, depth: int = 0) -> Any:
    """Copy ``value`` with the values of secret-looking keys replaced, bounded in depth."""
    if depth > 16:
        return MASK
    if isinstance(value, dict):
        return {
            k: (MASK if isinstance(k, str) and is_secret_key(k) else mask(v, depth=depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [mask(v, depth=depth + 1) for v in value]
    return value
