"""``Runtime``: the background loops of one process, started apart from construction (ADR 0151).

``start()`` starts, in order: the audit writer, the refusal log and the webhook dispatcher
(queues that must outlive every loop: the last records go through them), then the policy
publication and folder watcher, the expiry sweeper, replication, the lease reaper, the periodic
chores and the approvals/behaviour loop. ``stop()`` undoes it in reverse: loops first, then the
last records (a closing checkpoint, behaviour state, the Shared Signals leases), then the queues.
``stop()`` is also safe on a runtime never started (a ``Warden`` built and closed, as the CLI
does for one command): it then closes the components' connections only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from warden.authz.watcher import PolicyWatcher
from warden.bootstrap.services import Services
from warden.config import Settings

log = logging.getLogger("warden")

__all__ = ["Runtime", "govern", "governance_tick", "housekeeping"]


class Runtime:
    def __init__(self, services: Services, settings: Settings, *, primary: bool) -> None:
        self._s = services
        self._settings = settings
        # ``warden serve --workers N``: only the primary worker of a host runs the chores that
        # are once per deployment (housekeeping, governance, checkpoints, export, signals)
        self._primary = primary
        self._stop = threading.Event()
        self._watcher: PolicyWatcher | None = None
        self._threads: list[threading.Thread] = []  # in start order
        self.started = False

    @property
    def watcher(self) -> PolicyWatcher | None:
        """The policy folder's watcher, while running (an explicit reload goes through it)."""
        return self._watcher

    # -- start ----------------------------------------------------------------------------------
    def start(self) -> None:
        s, settings = self._s, self._settings
        self.started = True
        s.writer.start()
        s.refusals.start()
        s.webhooks.start()
        policies = settings.policies
        if s.pdp.policy_set is not None and policies.folder is not None:
            s.policies.loaded(s.pdp.policy_set)  # this replica's folder is published
        else:
            s.policy_sync.sync()  # follow the published revision
        if policies.folder is not None:
            self._watcher = PolicyWatcher(
                policies.folder,
                s.pdp,
                interval=policies.reload_interval,
                activate=s.policies.loaded,
                on_error=s.policy_status.rejected,
            )
            self._watcher.start()
        self._thread("warden-expiry", self._sweep_loop)
        s.replication.start()
        s.leases.start()
        # confirm the active revision well within the staleness bound (one small row read)
        sync_every = max(0.05, min(policies.reload_interval, policies.max_staleness / 4))
        self._every("warden-policies", sync_every, s.policy_sync.sync)
        self._every("warden-outage-journal", 1.0, s.outage.replay)
        if self._primary:
            self._every(
                "warden-governance", settings.governance.interval, lambda: governance_tick(s)
            )
            self._every(
                "warden-checkpoints", settings.audit.checkpoint_interval, s.checkpoints.tick
            )
            if s.export.sinks:  # a file sink is its own cursor: one writer per host
                self._every("warden-export", settings.audit.export_interval, s.export.tick)
            self._every("warden-signals", settings.signals.interval, s.signals.tick)
        self._thread("warden-approvals-behaviour", self._governance_loop)

    def _thread(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _every(self, name: str, interval: float, work: Callable[[], object]) -> None:
        """Run ``work`` every ``interval`` seconds until ``stop()``; errors are retried."""

        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    work()
                except Exception:  # a database hiccup must not end the loop
                    log.exception("%s failed; retrying next tick", name)

        self._thread(name, loop)

    # -- the loops ------------------------------------------------------------------------------
    def _sweep_loop(self) -> None:
        s = self._s
        next_housekeeping = time.monotonic()
        while not self._stop.wait(self._settings.expiry_sweep_interval):
            try:
                s.tasks.sweep_expired()
            except Exception:  # the loop must survive a database hiccup; it retries next tick
                log.exception("expiry sweep failed")
            try:
                s.attestation.refresh_due()  # bundle endpoints past their refresh hint
            except Exception:
                log.exception("trust bundle refresh failed")
            if self._primary and time.monotonic() >= next_housekeeping:
                next_housekeeping = (
                    time.monotonic() + self._settings.replication.housekeeping_interval
                )
                try:
                    housekeeping(s)
                except Exception:
                    log.exception("housekeeping failed")

    def _governance_loop(self) -> None:
        """Findings as they come (woken by the monitor), approval sweeps, baseline writes."""
        s = self._s
        interval = self._settings.approvals.sweep_interval
        last_sweep = last_persist = 0.0
        while not self._stop.is_set():
            s.monitor.wake.wait(min(0.25, interval))
            s.monitor.wake.clear()
            try:
                s.behaviour.drain()
                tick = time.monotonic()
                if tick - last_sweep >= interval:
                    last_sweep = tick
                    s.approvals.sweep()
                if tick - last_persist >= 5.0:
                    last_persist = tick
                    s.behaviour.persist()
            except Exception:  # the loop must survive a database hiccup; it retries next tick
                log.exception("governance loop failed")

    # -- stop -----------------------------------------------------------------------------------
    def stop(self) -> None:
        """Everything ``start()`` started, in reverse; then the last records; then the queues."""
        s = self._s
        self._stop.set()
        s.monitor.wake.set()  # the approvals/behaviour loop waits on it
        for thread in reversed(self._threads[1:]):  # the periodic chores, newest first
            thread.join(5)
        s.leases.close()
        s.replication.close()  # also its connections, started or not
        if self._threads:
            self._threads[0].join(5)  # the expiry sweeper
        if self._watcher is not None:
            self._watcher.stop()
        # the last records, while the queues still run
        _step("the final audit checkpoint", s.checkpoints.create)  # anchors the tail of the log
        _step("flushing behaviour state", self._flush_behaviour)
        _step("releasing the Shared Signals push leases", s.signals.release)
        s.webhooks.close()
        s.refusals.close()
        s.writer.close()

    def _flush_behaviour(self) -> None:
        self._s.behaviour.drain()
        self._s.behaviour.persist()


def housekeeping(s: Services) -> None:
    """Slow chores: forget old DPoP proofs and change-log rows, retire unneeded keys."""
    now = s.clock.now()
    s.store.prune_proofs(now=now)
    s.store.prune_changes(before=now - 3600)
    s.signals.prune()
    s.key_service.retire_due()


def governance_tick(s: Services) -> None:
    """Owners and lifecycle, then certification campaigns (issue 7)."""
    s.ownership.tick()
    s.certification.tick()


def govern(s: Services) -> None:
    """One pass of the governance work: findings and escalations, then approvals."""
    s.behaviour.drain()
    s.approvals.sweep()


def _step(what: str, work: Callable[[], object]) -> None:
    try:
        work()
    except Exception:  # one failing step must not keep the others from closing
        log.exception("stopping: %s failed", what)
