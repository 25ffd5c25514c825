"""Waiting for something another thread or process does (never a timing assertion)."""

from __future__ import annotations

import time
from collections.abc import Callable

DEADLINE = 8.0  # seconds to wait for something that should take milliseconds


def eventually(check: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.01)
    raise AssertionError(f"never happened: {what}")
