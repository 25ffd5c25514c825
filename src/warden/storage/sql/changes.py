"""How replicas tell each other about changes: PostgreSQL LISTEN/NOTIFY, or a polled table.

``open_change_channel(store)`` picks the channel for the store's database:

* **PostgreSQL** — ``publish`` is ``pg_notify(channel, json)`` on a dedicated autocommit
  connection (one round trip: no pool check-out, no BEGIN/COMMIT); ``run`` keeps another
  dedicated psycopg connection in ``LISTEN`` and hands each notification over as it arrives.
  The channel name is derived from the database and schema, so several deployments (or test
  schemas) on one server do not hear each other. After every (re)connection ``on_gap`` is called:
  notifications sent while the connection was down are lost, and the caller resyncs.
* **SQLite** (no NOTIFY) — ``publish`` appends to ``change_log``; ``run`` polls it by ``seq``
  every ``poll_interval`` seconds. ``on_gap`` is called at start and after a failed poll.

Freshness (ADR 0092): ``last_heard`` is when the channel last proved it hears the database —
a notification arrived (PostgreSQL; each replica publishes a ``tick`` every second, so silence
means a dead listener) or a poll succeeded (SQLite). ``reconnect()`` drops a listener that went
silent; the new connection calls ``on_gap`` like any other.

Payloads over PostgreSQL's 8000-byte NOTIFY limit are the caller's concern
(``service.replication`` splits them).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import psycopg
import sqlalchemy as sa
from psycopg import sql

from warden.core.clock import Clock
from warden.core.model import Change
from warden.errors import StorageError, WardenError
from warden.storage.sql.store import SQLStore

__all__ = [
    "NOTIFY_LIMIT",
    "TICK",
    "ChangeChannel",
    "PollingChangeChannel",
    "PostgresChangeChannel",
    "open_change_channel",
]

log = logging.getLogger("warden.replication")

NOTIFY_LIMIT = 7900  # bytes; PostgreSQL refuses payloads of 8000 bytes or more
_RECONNECT_DELAYS = (0.05, 0.2, 0.5, 1.0, 2.0)
# a partition that drops packets (no reset) must fail these connections within seconds, not
# after the kernel's 15-minute retransmission timeout: a publish would hold its lock that long
_CONNECT: dict[str, Any] = {
    "autocommit": True,
    "connect_timeout": 5,
    "tcp_user_timeout": 5000,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 1,
    "keepalives_count": 3,
}

Deliver = Callable[[Change], None]


TICK = "tick"  # a liveness notification; carries nothing and changes nothing


class ChangeChannel(Protocol):
    name: str
    last_heard: float | None  # time.monotonic(); see the module docstring

    def publish(self, change: Change) -> None:
        """Send one change to every replica (including this one, which ignores its own)."""
        ...

    def run(self, deliver: Deliver, on_gap: Callable[[], None], stop: threading.Event) -> None:
        """Deliver changes until ``stop`` is set (blocking; run it on a thread)."""
        ...

    def tick(self, origin: str) -> None:
        """Prove the channel works end to end (a no-op where a poll proves it)."""
        ...

    def reconnect(self) -> None:
        """Drop the listener connection and open a new one (it went silent)."""
        ...

    @property
    def connected(self) -> bool: ...

    def close(self) -> None: ...


def _encode(change: Change) -> str:
    return json.dumps(
        {"o": change.origin, "k": change.kind, "d": change.data}, separators=(",", ":")
    )


def _decode(payload: str) -> Change | None:
    try:
        body = json.loads(payload)
        if not isinstance(body, dict) or not isinstance(body.get("d"), dict):
            return None
        return Change(kind=str(body["k"]), data=body["d"], origin=str(body["o"]))
    except (ValueError, KeyError, TypeError):
        return None


class PostgresChangeChannel:
    """LISTEN/NOTIFY; see the module docstring."""

    def __init__(self, store: SQLStore) -> None:
        self.last_heard: float | None = None
        self._reconnect = threading.Event()
        self._engine = store.engine
        url = store.engine.url.set(drivername="postgresql")
        self._conninfo = url.render_as_string(hide_password=False)
        with self._engine.connect() as conn:
            database, schema = conn.execute(
                sa.text("SELECT current_database(), current_schema()")
            ).one()
        digest = hashlib.sha256(f"{database}.{schema}".encode()).hexdigest()[:16]
        self.name = f"warden_changes_{digest}"
        self._connected = False
        self._publisher: psycopg.Connection[tuple[object, ...]] | None = None
        self._publish_lock = threading.Lock()

    @property
    def connected(self) -> bool:
        return self._connected

    def publish(self, change: Change) -> None:
        payload = _encode(change)
        if len(payload.encode()) > NOTIFY_LIMIT:
            raise StorageError(f"change `{change.kind}` is too large for one notification")
        with self._publish_lock:
            for attempt in (1, 2):  # a dropped connection is reopened once
                try:
                    if self._publisher is None or self._publisher.closed:
                        self._publisher = psycopg.connect(self._conninfo, **_CONNECT)
                    self._publisher.execute("SELECT pg_notify(%s, %s)", (self.name, payload))
                    return
                except psycopg.Error as exc:
                    if self._publisher is not None:
                        self._publisher.close()
                    self._publisher = None
                    if attempt == 2:
                        raise StorageError(
                            f"cannot publish change `{change.kind}`: {str(exc).strip()}"
                        ) from exc

    def tick(self, origin: str) -> None:
        self.publish(Change(kind=TICK, data={}, origin=origin))

    def reconnect(self) -> None:
        self._reconnect.set()

    def close(self) -> None:
        with self._publish_lock:
            if self._publisher is not None:
                self._publisher.close()
                self._publisher = None

    def run(self, deliver: Deliver, on_gap: Callable[[], None], stop: threading.Event) -> None:
        failures = 0
        while not stop.is_set():
            try:
                with psycopg.connect(self._conninfo, **_CONNECT) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.name)))
                    self._connected = True
                    self.last_heard = time.monotonic()  # LISTEN was a round trip
                    self._reconnect.clear()
                    failures = 0
                    _safely(on_gap)
                    while not stop.is_set() and not self._reconnect.is_set():
                        for notify in conn.notifies(timeout=0.5):
                            self.last_heard = time.monotonic()
                            change = _decode(notify.payload)
                            if change is not None and change.kind != TICK:
                                _safely(functools.partial(deliver, change))
                    if self._reconnect.is_set():
                        log.warning("change listener went silent: reconnecting")
            except psycopg.Error as exc:
                log.warning("change listener lost its connection: %s", str(exc).strip())
            finally:
                self._connected = False
            delay = _RECONNECT_DELAYS[min(failures, len(_RECONNECT_DELAYS) - 1)]
            failures += 1
            stop.wait(delay)


class PollingChangeChannel:
    """The ``change_log`` table, polled; see the module docstring."""

    def __init__(self, store: SQLStore, clock: Clock, *, poll_interval: float = 0.1) -> None:
        self._store = store
        self._clock = clock
        self._interval = poll_interval
        self.name = "change_log"
        self._connected = False
        self.last_heard: float | None = None

    @property
    def connected(self) -> bool:
        return self._connected

    def publish(self, change: Change) -> None:
        self._store.append_change(change, ts=self._clock.now())

    def tick(self, origin: str) -> None:
        pass  # every successful poll is a round trip

    def reconnect(self) -> None:
        pass  # a failing poll starts over by itself

    def close(self) -> None:
        pass

    def run(self, deliver: Deliver, on_gap: Callable[[], None], stop: threading.Event) -> None:
        last: int | None = None
        while not stop.is_set():
            try:
                if last is None:
                    last = self._store.last_change_seq()
                    self._connected = True
                    _safely(on_gap)
                polled = time.monotonic()
                for seq, change in self._store.list_changes(after_seq=last):
                    last = seq
                    _safely(functools.partial(deliver, change))
                self.last_heard = polled
            except WardenError as exc:
                log.warning("change poller failed: %s", exc.message)
                self._connected = False
                last = None  # start over after a gap (and resync)
            stop.wait(self._interval)


def _safely(fn: Callable[[], None]) -> None:
    """A bad change (or a failing resync) must not stop the listener."""
    try:
        fn()
    except Exception:
        log.exception("applying a replicated change failed")


def open_change_channel(store: SQLStore, clock: Clock) -> ChangeChannel:
    if store.dialect == "postgresql":
        return PostgresChangeChannel(store)
    return PollingChangeChannel(store, clock)
