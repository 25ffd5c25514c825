"""How fresh this replica's view of the shared state is (ADR 0092).

The confirmation time is the start of the last freshness round that succeeded: a read of the
database (the deny-ward changes since the previous round) and, on PostgreSQL, proof that the
change listener still hears the channel (this replica's own tick came back). A listener that
is connected but hears nothing — a partitioned replica can keep a dead socket — does not count.
Past ``max_staleness`` without a confirmation the replica is *stale*: agent-mode decisions are
refused with ``state_stale`` and ``/readyz`` answers 503 naming the reason and the age.

The bound runs from start: a replica has ``max_staleness`` to confirm its first round. A
Warden whose replication was never started (a test world, a tool that opens the store to read)
has no change feed whose freshness could be measured and serves only what it wrote itself, so
the bound is armed by ``Replication.start()``, not by construction — otherwise any such world
living longer than the bound refused everything with ``state_stale``. Like
``PolicySync.status()`` (ADR 0120), this is a small tracker the replication loop feeds; the
decision path only reads ``stale_for()`` (one subtraction, no lock). Times are
``time.monotonic()``: elapsed time is what matters, and a wall-clock step (or a test's frozen
clock) must neither hide nor fake staleness.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Freshness", "StateFreshness"]


@dataclass(frozen=True, slots=True)
class StateFreshness:
    age: float
    max_staleness: float
    stale: bool
    reason: str | None  # why the latest round did not confirm (None: it did)

    def to_dict(self) -> dict[str, Any]:
        return {
            "age": round(self.age, 3),
            "max_staleness": self.max_staleness,
            "stale": self.stale,
            "reason": self.reason,
        }


class Freshness:
    def __init__(
        self, *, max_staleness: float, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._monotonic = monotonic
        self.max_staleness = max_staleness
        self._confirmed_at = monotonic()
        self._reason: str | None = None
        self._armed = False

    def arm(self) -> None:
        """The replication loop starts: from now on its rounds must confirm within the bound."""
        self._confirmed_at = self._monotonic()
        self._armed = True

    def confirm(self, at: float) -> None:
        """The shared state as of ``at`` is applied here (time never moves backwards)."""
        self._confirmed_at = max(self._confirmed_at, at)
        self._reason = None

    def failing(self, reason: str) -> None:
        """A round did not confirm; the age keeps growing and ``reason`` says why."""
        self._reason = reason

    def stale_for(self) -> float | None:
        """The age of this replica's view when it is past the bound, else None."""
        if not self._armed:
            return None
        age = self._monotonic() - self._confirmed_at
        return age if age > self.max_staleness else None

    def status(self) -> StateFreshness:
        age = max(0.0, self._monotonic() - self._confirmed_at)
        stale = self._armed and age > self.max_staleness
        reason = self._reason
        if stale and reason is None:
            reason = "no freshness round confirmed within the bound"
        return StateFreshness(age, self.max_staleness, stale, reason)

    def describe(self, age: float) -> str:
        why = f": {self._reason}" if self._reason else ""
        return f"this replica's view is {age:.1f}s old (bound {self.max_staleness:g}s){why}"
