"""Replicas acting as one: changes made on one replica reach every other replica's hot state.

Every Warden process over the same database is a replica with its own ``HotState``. A change
(task end with its revoked credentials, a single revocation, an agent's status, a policy reload,
a key rotation, an enforcement-mode change) is committed to the database first, then announced
on the change channel (PostgreSQL NOTIFY, or the polled ``change_log`` on SQLite). Each replica
applies what others announce; its own announcements come back to it and are skipped.

Safety nets, because a notification can be lost (listener connection dropped, replica paused,
publisher failed or died between commit and NOTIFY):

* every second a freshness round (ADR 0092) publishes a ``tick`` and reads the changes toward
  deny made since the last round (revoked credentials, agents no longer active — one indexed
  read): a lost deny-ward notification is applied within a second, and a round that fails, or a
  listener that stops hearing its own ticks, makes the replica stale past ``max_staleness``
  (``service.freshness``; agent decisions are then refused with ``state_stale``);
* after the listener (re)connects, and every ``resync_interval`` seconds, a full resync rebuilds
  the hot state from the database (``HotState`` journals changes made during the read); a
  failed resync is retried with backoff, and the replica reports stale until one succeeds;
* the decision path looks up tasks and agents it does not know in the database (a replica never
  needs to hear about a task start), and the database stays the authority for ending tasks.

Changes toward deny (task ended, credential revoked, agent suspended or decommissioned) are
applied from the notification payload alone, never after a database read that could fail.

Every replica also records a heartbeat (``replicas`` table) with the URL it serves on, so an
operator (``warden agents suspend``) can check that a change reached all of them. An in-process
Warden that serves no API (an embedded PDP, ``warden mcp-proxy`` with Warden embedded) has no
URL to check: it applies changes like any replica but records no heartbeat.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from warden.core.clock import Clock
from warden.core.ids import new_id
from warden.core.model import AgentStatus, Change, DenyChanges, Replica
from warden.core.ports import Store
from warden.errors import NotFoundError, WardenError
from warden.service.freshness import Freshness
from warden.service.state import HotState, read_snapshot
from warden.storage.sql.changes import NOTIFY_LIMIT, ChangeChannel

log = logging.getLogger("warden.replication")

# What other replicas do on changes that are not about hot state: name -> callback
Handlers = dict[str, Callable[[dict[str, Any]], None]]

_DENY_STATUSES = frozenset({AgentStatus.SUSPENDED.value, AgentStatus.DECOMMISSIONED.value})
_RESYNC_BACKOFF = (0.2, 0.5, 1.0, 2.0, 5.0)  # seconds between attempts of a failing resync
# the deny-ward read overlaps the previous round by this much: revocation times are stamped
# by the revoking replica's clock, which may be behind this one's
_CLOCK_SKEW = 10.0


@dataclass
class ReplicationStats:
    started_at: float
    changes_sent: int = 0
    changes_applied: int = 0
    publish_failures: int = 0
    resyncs: int = 0
    last_resync_at: float | None = None
    last_change_at: float | None = None
    resync_failures: int = 0
    deny_applied: int = 0  # deny-ward changes the freshness round found before a notification
    by_kind: dict[str, int] = field(default_factory=dict)


class Announcer:
    """The sending half: this replica's id and ``announce(kind, data)`` on the change channel.

    Built before the services that announce (hot state, keys, operators, modes, baselines), which
    get it at construction; the receiving half (``Replication``) is built after them with their
    handlers. That is how the composition root builds both without wiring either late."""

    def __init__(self, channel: ChangeChannel, clock: Clock) -> None:
        self.replica_id = new_id("replica")
        self.channel = channel
        self.stats = ReplicationStats(started_at=clock.now())

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        """Tell the other replicas (after the change is committed). Never raises: a lost
        announcement is repaired by their next resync."""
        for part_kind, part in _split(kind, data):
            try:
                self.channel.publish(Change(kind=part_kind, data=part, origin=self.replica_id))
                self.stats.changes_sent += 1
            except WardenError as exc:
                self.stats.publish_failures += 1
                log.warning("could not announce `%s` to other replicas: %s", kind, exc.message)


class Replication:
    """The receiving half and the safety nets: applies what other replicas announce, runs the
    freshness rounds, resyncs and heartbeats (``start()``; ``close()`` stops them)."""

    def __init__(
        self,
        store: Store,
        state: HotState,
        announcer: Announcer,
        clock: Clock,
        *,
        freshness: Freshness,
        url: str | None,
        resync_interval: float = 30.0,
        heartbeat_interval: float = 5.0,
        handlers: Handlers | None = None,
    ) -> None:
        self._announcer = announcer
        self.replica_id = announcer.replica_id
        self._store = store
        self._state = state
        self._channel = announcer.channel
        self._clock = clock
        self._url = url
        self._resync_interval = resync_interval
        self._heartbeat_interval = heartbeat_interval
        self._handlers: Handlers = dict(handlers or {})
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._resync_lock = threading.Lock()
        self.stats = announcer.stats
        self.freshness = freshness
        self._tick_interval = min(1.0, freshness.max_staleness / 5)
        self._wake = threading.Event()  # the resync loop: a resync is due, or stop
        self._resync_due = threading.Event()
        self._resync_error: str | None = None
        self._polled_at = clock.now()  # wall time of the last deny-ward read that succeeded

    @property
    def channel(self) -> ChangeChannel:
        return self._channel

    # -- sending ------------------------------------------------------------------------------
    def announce(self, kind: str, data: dict[str, Any]) -> None:
        """Tell the other replicas (``Announcer``); never raises."""
        self._announcer(kind, data)

    # -- receiving ----------------------------------------------------------------------------
    def apply(self, change: Change) -> None:
        if change.origin == self.replica_id:
            return
        data = change.data
        if change.kind == "task.ended":
            tasks = {str(k): _number(v) for k, v in (data.get("tasks") or {}).items()}
            revoked = {str(k): float(v) for k, v in (data.get("revoked") or {}).items()}
            self._state.end_tasks(tasks, revoked, announce=False)
        elif change.kind == "credential.revoked":
            self._state.revoke(str(data["jti"]), float(data["expires_at"]), announce=False)
        elif change.kind == "agent.changed":
            self._agent_changed(data)
        elif change.kind == "resync":
            self.request_resync()
        else:
            handler = self._handlers.get(change.kind)
            if handler is None:
                log.debug("ignoring unknown change `%s`", change.kind)
                return
            handler(data)
        self.stats.changes_applied += 1
        self.stats.last_change_at = self._clock.now()
        self.stats.by_kind[change.kind] = self.stats.by_kind.get(change.kind, 0) + 1

    def _agent_changed(self, data: dict[str, Any]) -> None:
        name, status = str(data["name"]), data.get("status")
        known = self._state.agents_by_name.get(name)
        if known is not None and status in _DENY_STATUSES:
            # toward deny: from the payload alone, no read that could fail (ADR 0092)
            self._state.put_agent(replace(known, status=AgentStatus(status)), announce=False)
            return
        try:
            agent = self._store.fetch_agent(name)
        except NotFoundError:
            return
        except WardenError:
            self.request_resync()  # keep what we have (fail closed) and catch up soon
            raise
        self._state.put_agent(agent, announce=False)

    def request_resync(self) -> None:
        """Resync soon, on the resync loop (retried with backoff until it succeeds)."""
        self._resync_due.set()
        self._wake.set()

    def resync(self) -> None:
        """Rebuild the hot state from the database (and let handlers refresh what they hold)."""
        with self._resync_lock:
            self._state.begin_resync()
            try:
                snapshot = read_snapshot(self._store, now=self._clock.now())
            except BaseException as exc:
                self._state.abandon_resync()
                self.stats.resync_failures += 1
                self._resync_error = _describe(exc)
                raise
            self._state.install(snapshot)
            refresh = self._handlers.get("resync")
            if refresh is not None:
                refresh({})
            self._resync_error = None
            self.stats.resyncs += 1
            self.stats.last_resync_at = self._clock.now()

    # -- freshness (ADR 0092) -----------------------------------------------------------------
    def freshness_round(self) -> None:
        """Tick, read what changed toward deny since the last round, and confirm freshness if
        the database answered, the listener still hears the channel and no resync is failing."""
        started, wall = time.monotonic(), self._clock.now()
        try:
            self._channel.tick(self.replica_id)
            changes = self._store.deny_changes(since=self._polled_at - _CLOCK_SKEW, now=wall)
        except Exception as exc:  # any failure is staleness, never an exception on a loop
            self.freshness.failing(f"cannot reach the database: {_describe(exc)}")
            return
        self._polled_at = wall
        self._apply_deny(changes)
        heard = self._channel.last_heard
        if heard is None or started - heard > 3 * self._tick_interval:
            self.freshness.failing("the change listener hears nothing from the database")
            self._channel.reconnect()
            return
        if self._resync_error is not None:
            self.freshness.failing(f"resync failing: {self._resync_error}")
            return
        self.freshness.confirm(min(started, heard))

    def _apply_deny(self, changes: DenyChanges) -> None:
        for jti, expires_at in changes.revoked.items():
            if jti not in self._state.revoked:
                self._state.revoke(jti, expires_at, announce=False)
                self.stats.deny_applied += 1
        for name, status in changes.agents.items():
            known = self._state.agents_by_name.get(name)
            if known is not None and known.status.value != status and status in _DENY_STATUSES:
                self._state.put_agent(replace(known, status=AgentStatus(status)), announce=False)
                self.stats.deny_applied += 1

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        # listed before the first request is served: a replica whose /readyz answers 200 is in
        # /v1/replicas (the loop's first heartbeat would come a moment after start)
        self._heartbeat()
        self.freshness.arm()
        listener = threading.Thread(
            target=self._channel.run,
            args=(self.apply, self._gap, self._stop),
            name="warden-changes",
            daemon=True,
        )
        periodic = threading.Thread(target=self._loop, name="warden-resync", daemon=True)
        watch = threading.Thread(target=self._watch, name="warden-freshness", daemon=True)
        self._threads = [listener, periodic, watch]
        for thread in self._threads:
            thread.start()

    def _gap(self) -> None:
        log.info("change channel (re)connected: resyncing hot state from the database")
        self.request_resync()

    def _watch(self) -> None:
        while not self._stop.wait(self._tick_interval):
            self.freshness_round()

    def _loop(self) -> None:
        """Replica heartbeats, the periodic resync, and resyncs asked for (with backoff)."""
        next_resync = time.monotonic() + self._resync_interval
        next_heartbeat = time.monotonic() + self._heartbeat_interval  # start() wrote the first
        failures = 0
        while not self._stop.is_set():
            if time.monotonic() >= next_heartbeat:
                self._heartbeat()
                next_heartbeat = time.monotonic() + self._heartbeat_interval
            if self._resync_due.is_set() or time.monotonic() >= next_resync:
                self._resync_due.clear()
                try:
                    self.resync()
                    failures = 0
                    next_resync = time.monotonic() + self._resync_interval
                except Exception as exc:  # the loop must survive a database outage
                    log.warning("resync failed (retrying): %s", _describe(exc))
                    failures += 1
                    self._resync_due.set()
            if self._resync_due.is_set():
                wait = _RESYNC_BACKOFF[min(failures, len(_RESYNC_BACKOFF)) - 1] if failures else 0
            else:
                wait = min(next_heartbeat, next_resync) - time.monotonic()
            self._wake.wait(max(0.0, wait))
            self._wake.clear()

    def _heartbeat(self) -> None:
        if self._url is None:  # serves no API: nothing for an operator to check
            return
        now = self._clock.now()
        try:
            self._store.upsert_replica(
                Replica(self.replica_id, self._url, self.stats.started_at, now)
            )
        except WardenError as exc:
            log.warning("replica heartbeat failed: %s", exc.message)

    def replicas(self) -> list[Replica]:
        since = self._clock.now() - 3 * self._heartbeat_interval
        return self._store.list_replicas(seen_since=since)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(5)
        self._channel.close()
        try:
            self._store.delete_replica(self.replica_id)
        except WardenError:
            pass


def _describe(exc: BaseException) -> str:
    text = exc.message if isinstance(exc, WardenError) else str(exc) or type(exc).__name__
    return text.strip().splitlines()[0][:300] if text.strip() else type(exc).__name__


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _split(kind: str, data: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Keep each notification under the payload limit.

    An oversized ``task.ended`` is sent in parts by task, without the revoked credential ids
    (ending a task denies every credential of it; the next resync fills in the revocation
    set). Any other oversized change becomes a request to resync.
    """
    if len(json.dumps(data, separators=(",", ":"))) <= NOTIFY_LIMIT - 200:
        return [(kind, data)]
    if kind != "task.ended":
        return [("resync", {})]
    parts: list[tuple[str, dict[str, Any]]] = []
    tasks: dict[str, Any] = {}
    for task_id, expiry in (data.get("tasks") or {}).items():
        tasks[task_id] = expiry
        if len(json.dumps(tasks)) > NOTIFY_LIMIT // 2:
            parts.append((kind, {"tasks": tasks, "revoked": {}}))
            tasks = {}
    if tasks:
        parts.append((kind, {"tasks": tasks, "revoked": {}}))
    return parts
