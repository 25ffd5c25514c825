"""A sliding-window counter over fixed buckets: O(1) per add, no allocation on the hot path."""

from __future__ import annotations


class SlidingCounter:
    """The sum of amounts added during the last ``window`` seconds (bucket resolution)."""

    __slots__ = ("_counts", "_head", "_n", "_total", "_width")

    def __init__(self, window: float, buckets: int = 12) -> None:
        self._n = max(1, buckets)
        self._width = max(window, 1e-6) / self._n
        self._counts = [0.0] * self._n
        self._head = -1  # absolute index of the newest bucket
        self._total = 0.0

    def _advance(self, bucket: int) -> None:
        if self._head < 0 or bucket - self._head >= self._n:
            for i in range(self._n):
                self._counts[i] = 0.0
            self._total = 0.0
        else:
            for b in range(self._head + 1, bucket + 1):
                i = b % self._n
                self._total -= self._counts[i]
                self._counts[i] = 0.0
        self._head = bucket

    def add(self, now: float, amount: float = 1.0) -> float:
        """Add ``amount`` at ``now``; return the new total over the window."""
        bucket = int(now // self._width)
        if bucket > self._head:
            self._advance(bucket)
        self._counts[bucket % self._n] += amount
        self._total += amount
        return self._total

    def total(self, now: float) -> float:
        bucket = int(now // self._width)
        if bucket > self._head:
            self._advance(bucket)
        return self._total if self._total > 1e-9 else 0.0
