"""Counters shared by every replica: what budgets, rate windows and deny streaks are kept in
when Warden runs as several replicas (ADR 0094). Pure: the backend lives in
``warden.storage.redis_counters``.

A *claim* adds ``amount`` to a sliding window (``window`` seconds in ``buckets`` buckets) kept
under one agent's ``scope``. ``reserve`` applies a list of claims atomically and synchronously —
a claim with a ``limit`` is refused when it would pass it, and then no limited claim is applied
(unlimited ones, such as the call-rate window, always are) — and returns the new totals and the
agent's deny streak. It is the one round trip on the decision path; it raises
``CountersUnavailableError`` when the backend does not answer, and the caller refuses (fail
closed). ``submit`` does the same off the decision path (pipelined by a background flusher):
refunds of a reservation the decision did not use, deny-streak increments and resets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

StreakOp = Literal["get", "incr", "reset", "none"]


@dataclass(frozen=True, slots=True)
class Claim:
    name: str  # the counter, within the agent's scope (e.g. ``budget_calls``)
    window: float
    buckets: int
    amount: float = 1.0
    limit: float | None = None  # None: always applied, never refused
    bucket: int | None = None  # None: the bucket of ``now``; a refund names the reserved one


@dataclass(frozen=True, slots=True)
class Reserved:
    """The outcome of ``reserve``: ``refused`` is the index of the first claim over its limit
    (-1: none), ``totals`` the window totals after the call (in claim order), ``streak`` the
    deny streak after the streak operation, ``buckets`` where each claim was added."""

    refused: int
    totals: tuple[float, ...]
    streak: int
    buckets: tuple[int, ...]

    def refunds(self, claims: Sequence[Claim]) -> list[Claim]:
        """The claims that undo what this reservation added to limited counters."""
        if self.refused >= 0:
            return []
        return [
            Claim(c.name, c.window, c.buckets, -c.amount, None, b)
            for c, b in zip(claims, self.buckets, strict=True)
            if c.limit is not None and c.amount
        ]


class SharedCounters(Protocol):
    def reserve(
        self, scope: str, claims: Sequence[Claim], now: float, streak: StreakOp = "get"
    ) -> Reserved: ...

    def submit(
        self,
        scope: str,
        claims: Sequence[Claim],
        now: float,
        streak: StreakOp = "none",
        then: Callable[[Reserved], None] | None = None,
    ) -> None: ...

    def problem(self) -> str | None:
        """None while the backend answers, else why not (for /readyz)."""
        ...

    def close(self) -> None: ...
