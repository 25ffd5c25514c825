"""Refused management calls, audited without letting a flood flood the log (issue 10).

Every refused operator authentication or authorization (no token, an unknown, expired or
disabled one, a wrong role, an agent credential where an operator is needed) is noted with its
source address and reason. The first refusal of a (source, reason) pair in a window is recorded
at once (``operator.auth_refused``, ``count: 1``); the rest of that window are counted and
recorded as one summary record when the window closes (``count: n``, ``first_at``,
``last_at``, up to ``MAX_PATHS`` distinct paths). At most ``MAX_KEYS`` pairs are tracked per
window; refusals beyond that are counted under one overflow key, so memory stays bounded too.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from warden.core.clock import Clock
from warden.service.auditing import Auditor

WINDOW = 10.0  # seconds
MAX_KEYS = 1000
MAX_PATHS = 10
REFUSED = "operator.auth_refused"
_OVERFLOW = ("*", "overflow")


@dataclass
class _Tally:
    first_at: float
    last_at: float
    count: int = 0
    paths: list[str] = field(default_factory=list)


class RefusalLog:
    def __init__(self, auditor: Auditor, clock: Clock, *, window: float = WINDOW) -> None:
        self._audit = auditor
        self._clock = clock
        self._window = window
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str], _Tally] = {}
        self._opened: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def note(self, source: str, reason: str, path: str, status: int) -> None:
        now = self._clock.now()
        first = False
        closed: dict[tuple[str, str], _Tally] = {}
        with self._lock:
            if self._opened is not None and now - self._opened >= self._window:
                closed = self._take_locked()
            if self._opened is None:
                self._opened = now
            key = (source[:100], reason[:60])
            tally = self._pending.get(key)
            if tally is None:
                if len(self._pending) >= MAX_KEYS:
                    key = _OVERFLOW
                    tally = self._pending.setdefault(key, _Tally(now, now))
                else:
                    tally = self._pending[key] = _Tally(now, now)
                    first = True
            tally.count += 1
            tally.last_at = now
            if len(tally.paths) < MAX_PATHS and path[:200] not in tally.paths:
                tally.paths.append(path[:200])
        self._record(closed)
        if first:
            self._audit.note(
                REFUSED,
                f"source:{key[0]}",
                {
                    "source": key[0],
                    "reason": key[1],
                    "status": status,
                    "count": 1,
                    "paths": [path[:200]],
                    "window": self._window,
                },
            )

    def flush(self) -> None:
        """Record the summaries of the window so far (counts past each pair's first)."""
        with self._lock:
            pending = self._take_locked()
        self._record(pending)

    def _take_locked(self) -> dict[tuple[str, str], _Tally]:
        pending, self._pending, self._opened = self._pending, {}, None
        return pending

    def _record(self, pending: dict[tuple[str, str], _Tally]) -> None:
        for (source, reason), tally in pending.items():
            extra = tally.count - (0 if (source, reason) == _OVERFLOW else 1)
            if extra <= 0:
                continue
            self._audit.note(
                REFUSED,
                f"source:{source}",
                {
                    "source": source,
                    "reason": reason,
                    "count": extra,
                    "first_at": tally.first_at,
                    "last_at": tally.last_at,
                    "paths": tally.paths,
                    "window": self._window,
                    "summary": True,
                },
            )

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="warden-refusals", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._window / 2):
            with self._lock:
                due = self._opened is not None and self._clock.now() - self._opened >= self._window
                pending = self._take_locked() if due else {}
            self._record(pending)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.flush()
