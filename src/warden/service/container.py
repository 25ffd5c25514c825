"""The composition root: builds every component from Settings and runs the background loops."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from warden.audit.writer import AuditWriter
from warden.authz.pdp import PolicyDecisionPoint
from warden.authz.policy_set import LoadedPolicySet, load_policy_dir
from warden.authz.watcher import PolicyWatcher
from warden.behaviour import BehaviourMonitor
from warden.config import Settings
from warden.core.clock import Clock, SystemClock
from warden.core.ports import Store
from warden.errors import PolicyError
from warden.service.agents import AgentService
from warden.service.approvals import ApprovalService
from warden.service.attestation import build_attestation
from warden.service.auditing import Auditor
from warden.service.behaviour import BehaviourService
from warden.service.decisions import DecisionService
from warden.service.entries import EntryService
from warden.service.join_tokens import JoinTokenService
from warden.service.modes import ModeService
from warden.service.notifications import Notifier
from warden.service.operators import OperatorService
from warden.service.state import HotState
from warden.service.tasks import TaskLimits, TaskService
from warden.service.workload import WorkloadService
from warden.storage.sql import open_store, sqlite_url_for
from warden.tokens.issuer import TaskCredentialIssuer
from warden.tokens.keys import DiskKeyManager
from warden.tokens.verifier import TaskCredentialVerifier
from warden.webhooks import WebhookDispatcher

log = logging.getLogger("warden")


class Warden:
    """Everything one Warden process holds. ``start()`` runs the loops; ``close()`` stops them."""

    def __init__(
        self, settings: Settings, *, clock: Clock | None = None, store: Store | None = None
    ):
        self.settings = settings
        self.clock = clock or SystemClock()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.store: Store = store or open_store(
            settings.database_url or sqlite_url_for(settings.data_dir)
        )
        self.store.migrate()
        self.writer = AuditWriter(self.store)
        self.auditor = Auditor(self.writer, self.clock)
        self.keys = DiskKeyManager(settings.data_dir / "keys", self.clock)
        issuer = settings.effective_issuer
        self.issuer = TaskCredentialIssuer(self.keys, issuer, self.clock)
        self.verifier = TaskCredentialVerifier(
            self.keys, issuer=issuer, audiences=settings.accepted_audiences, clock=self.clock
        )
        self.state = HotState()
        self.state.load(self.store, now=self.clock.now())
        self.entries = EntryService(self.store, self.state, self.auditor, self.clock)
        self.join_tokens = JoinTokenService(self.store, self.auditor, self.clock)
        self.attestation = build_attestation(settings, self.store, self.clock)
        self.attestors = self.attestation.registry
        self.workload = WorkloadService(
            self.entries,
            self.attestation.own,
            self.auditor,
            svid_ttl=settings.workload_svid_ttl,
        )
        self.pdp = PolicyDecisionPoint()
        self.policy_error: str | None = None
        if settings.policies_dir is not None:
            self.pdp.activate(load_policy_dir(settings.policies_dir))
        self.modes = ModeService(self.store, self.auditor, self.clock, settings.tier_modes)
        self.modes.load()
        self.operators = OperatorService(self.store, self.auditor, self.clock)
        self.tasks = TaskService(
            self.store,
            self.state,
            self.auditor,
            self.clock,
            self.attestors,
            self.issuer,
            self.verifier,
            TaskLimits(
                credential_ttl=settings.credential_ttl,
                credential_max_ttl=settings.credential_max_ttl,
                task_ttl=settings.task_ttl,
                task_max_ttl=settings.task_max_ttl,
                issuer=issuer,
                accepted_audiences=settings.accepted_audiences,
            ),
            entries=self.entries,
        )
        default_td = settings.trust_domains[0].name if settings.trust_domains else "warden.local"
        self.agents = AgentService(
            self.store,
            self.state,
            self.auditor,
            self.clock,
            default_trust_domain=default_td,
            end_tasks=self.tasks.end_all_for_agent,
        )
        self.webhooks = WebhookDispatcher(
            settings.webhooks,
            max_attempts=settings.webhook_max_attempts,
            base_delay=settings.webhook_base_delay,
            timeout=settings.webhook_timeout,
            on_result=lambda d, ok, final: self.notifier.delivered(d, ok, final),
        )
        self.notifier = Notifier(
            self.webhooks if settings.webhooks else None,
            self.auditor,
            self.clock,
            settings.approvals.groups,
        )
        self.approvals = ApprovalService(
            self.store,
            self.state,
            self.auditor,
            self.clock,
            settings.approvals,
            self.notifier,
            issuer,
        )
        self.approvals.load()
        self.monitor = BehaviourMonitor(settings.behaviour)
        self.behaviour = BehaviourService(
            self.store, self.monitor, self.auditor, self.clock, self.notifier, self.agents.suspend
        )
        self.behaviour.load()
        self.decisions = DecisionService(
            self.pdp,
            self.tasks,
            self.state,
            self.modes,
            self.auditor,
            self.clock,
            self.approvals,
            self.monitor,
        )
        if self.pdp.policy_set is not None:
            self.decisions.policies_loaded(self.pdp.policy_set)
        self._watcher: PolicyWatcher | None = None
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None
        self._governor: threading.Thread | None = None

    # -- policies -----------------------------------------------------------------------------
    def _policies_loaded(self, lps: LoadedPolicySet) -> None:
        self.policy_error = None
        self.decisions.policies_loaded(lps)
        self.auditor.record(
            "policy.loaded",
            "warden",
            {"revision": lps.revision, "policies": len(lps.policy_ids)},
        )

    def _policies_rejected(self, exc: Exception) -> None:
        self.policy_error = str(exc)
        log.warning("policy change rejected, last good set keeps serving: %s", exc)
        self.auditor.record(
            "policy.rejected",
            "warden",
            {"error": str(exc)[:2000], "serving_revision": self.pdp.revision},
        )

    def reload_policies(self) -> str:
        if self.settings.policies_dir is None:
            raise PolicyError("no policy folder is configured")
        try:
            lps = load_policy_dir(self.settings.policies_dir)
        except PolicyError as exc:
            self._policies_rejected(exc)
            raise
        self.pdp.activate(lps)
        self._policies_loaded(lps)
        return lps.revision

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        self.writer.start()
        if self.pdp.policy_set is not None:
            self._policies_loaded(self.pdp.policy_set)
        if self.settings.policies_dir is not None:
            self._watcher = PolicyWatcher(
                self.settings.policies_dir,
                self.pdp,
                interval=self.settings.policy_reload_interval,
                on_loaded=self._policies_loaded,
                on_error=self._policies_rejected,
            )
            self._watcher.start()
        self._sweeper = threading.Thread(target=self._sweep_loop, name="warden-expiry", daemon=True)
        self._sweeper.start()
        self.webhooks.start()
        self._governor = threading.Thread(
            target=self._governance_loop, name="warden-governance", daemon=True
        )
        self._governor.start()

    def _sweep_loop(self) -> None:
        while not self._stop.wait(self.settings.expiry_sweep_interval):
            try:
                self.tasks.sweep_expired()
            except Exception:  # the loop must survive a database hiccup; it retries next tick
                log.exception("expiry sweep failed")
            self.attestation.refresh_due()  # bundle endpoints past their refresh hint

    def govern(self) -> None:
        """One pass of the governance work: findings and escalations, then approvals."""
        self.behaviour.drain()
        self.approvals.sweep()

    def _governance_loop(self) -> None:
        """Findings as they come (woken by the monitor), approval sweeps, baseline writes."""
        interval = self.settings.approvals.sweep_interval
        last_sweep = last_persist = 0.0
        while not self._stop.is_set():
            self.monitor.wake.wait(min(0.25, interval))
            self.monitor.wake.clear()
            try:
                self.behaviour.drain()
                tick = time.monotonic()
                if tick - last_sweep >= interval:
                    last_sweep = tick
                    self.approvals.sweep()
                if tick - last_persist >= 5.0:
                    last_persist = tick
                    self.behaviour.persist()
            except Exception:  # the loop must survive a database hiccup; it retries next tick
                log.exception("governance loop failed")

    def close(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.stop()
        if self._sweeper is not None:
            self._sweeper.join(5)
        if self._governor is not None:
            self.monitor.wake.set()
            self._governor.join(5)
        try:
            self.behaviour.drain()
            self.behaviour.persist()
        except Exception:
            log.exception("could not flush behaviour state at shutdown")
        self.webhooks.close()
        self.writer.close()
        self.store.close()

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir
