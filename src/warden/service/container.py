"""The composition root: builds every component from Settings and runs the background loops."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from warden.audit.head import HEAD_FILE, HeadFile
from warden.audit.writer import AuditWriter
from warden.authz.pdp import PolicyDecisionPoint
from warden.authz.policy_set import LoadedPolicySet, load_policy_dir
from warden.authz.watcher import PolicyWatcher
from warden.behaviour import BehaviourMonitor, SharedCounters
from warden.broker.templates import parse_service, parse_target
from warden.config import Settings
from warden.core.clock import Clock, SystemClock
from warden.core.governance import TimeoutAction
from warden.core.ports import Store
from warden.errors import InvalidParameterError, NotFoundError, PolicyError
from warden.evidence.controls import Thresholds
from warden.service.agents import AgentService
from warden.service.approvals import ApprovalService
from warden.service.attestation import build_attestation
from warden.service.attribution import AttributionService
from warden.service.auditing import Auditor
from warden.service.behaviour import BehaviourService
from warden.service.certification import CertificationService
from warden.service.checkpoints import CheckpointService
from warden.service.credentials import CredentialService
from warden.service.decisions import DecisionService
from warden.service.entries import EntryService
from warden.service.events import EventFeed
from warden.service.explain import DecisionExplainer
from warden.service.export import ExportService
from warden.service.introspection import IntrospectionService
from warden.service.join_tokens import JoinTokenService
from warden.service.keys import KeyService
from warden.service.leases import LeaseService
from warden.service.liveness import Liveness
from warden.service.manifests import ManifestService
from warden.service.modes import ModeService
from warden.service.notifications import Notifier
from warden.service.operators import CHANGED as OPERATOR_CHANGED
from warden.service.operators import OperatorService
from warden.service.outage import OutageService
from warden.service.outage_journal import JOURNAL_NAME, OutageJournal
from warden.service.ownership import LifecyclePolicy, OwnershipService
from warden.service.pins import ToolPinService
from warden.service.policy_sync import PolicySync
from warden.service.refusals import RefusalLog
from warden.service.replication import Replication
from warden.service.reports import controls_report
from warden.service.signals import SignalService
from warden.service.sinks import make_sink
from warden.service.state import HotState
from warden.service.tasks import TaskLimits, TaskService
from warden.service.workload import WorkloadService
from warden.storage.sql import SQLStore, open_store, sqlite_url_for
from warden.storage.sql.changes import open_change_channel
from warden.telemetry import NO_TRACING, Tracing, otlp_tracing
from warden.tokens.downstream import DownstreamTokenIssuer
from warden.tokens.dpop import DPoPVerifier
from warden.tokens.issuer import TaskCredentialIssuer
from warden.tokens.sealed import KeyEncryptionKey, SealedKeyManager, historical_jwks
from warden.tokens.verifier import TaskCredentialVerifier
from warden.webhooks import WebhookDispatcher

log = logging.getLogger("warden")


class Warden:
    """Everything one Warden process holds. ``start()`` runs the loops; ``close()`` stops them."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        store: Store | None = None,
        primary: bool = True,
    ):
        self.settings = settings
        # ``warden serve --workers N``: only the primary worker of a host runs the chores that are
        # once per deployment (housekeeping, governance, checkpoints, export, signals; ADR 0142)
        self.primary = primary
        self.clock = clock or SystemClock()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.store: Store = store or open_store(
            settings.database_url or sqlite_url_for(settings.data_dir)
        )
        self.store.migrate()
        self.counters = shared_counters(settings)
        self.feed = EventFeed(settings.log_events_level)
        self.writer = AuditWriter(
            self.store,
            on_written=self.feed.written,
            durability=settings.audit_durability,
            max_wait=settings.audit_max_wait,
            head=_head_file(settings, self.store),
        )
        self.auditor = Auditor(self.writer, self.clock)
        self.tracing = _tracing(settings)
        self.auditor.tracing = self.tracing
        if self.tracing.enabled:
            self.writer.commit_observers.append(self._trace_commit)
        self.keys = SealedKeyManager(
            self.store, _key_encryption_key(settings, self.store), self.clock
        )
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
        self.dpop = DPoPVerifier(self.clock, self.store, max_age=settings.dpop_max_age)
        self.pdp = PolicyDecisionPoint()
        self.policy_error: str | None = None
        self.policy_errors: list[dict[str, Any]] = []
        if settings.policies_dir is not None:
            self.pdp.activate(load_policy_dir(settings.policies_dir))
        self.modes = ModeService(self.store, self.auditor, self.clock, settings.tier_modes)
        self.modes.load()
        self.operators = OperatorService(
            self.store, self.auditor, self.clock, token_ttl=settings.operator_token_ttl
        )
        self.refusals = RefusalLog(self.auditor, self.clock)
        self.manifests = ManifestService(self.store, self.auditor, self.clock)
        self.pins = ToolPinService(self.store, self.auditor, self.clock)
        limits = TaskLimits(
            credential_ttl=settings.credential_ttl,
            credential_max_ttl=settings.credential_max_ttl,
            task_ttl=settings.task_ttl,
            task_max_ttl=settings.task_max_ttl,
            issuer=issuer,
            accepted_audiences=settings.accepted_audiences,
            max_delegation_depth=settings.max_delegation_depth,
            dpop_required_tiers=frozenset(settings.dpop_required_tiers),
        )
        self.liveness = Liveness(self.store, self.state, self.clock)
        self.credentials = CredentialService(
            self.store,
            self.state,
            self.auditor,
            self.clock,
            self.issuer,
            self.verifier,
            self.dpop,
            self.liveness,
            credential_ttl=limits.credential_ttl,
            token_endpoint=limits.token_endpoint,
        )
        self.tasks = TaskService(
            self.store,
            self.state,
            self.auditor,
            self.clock,
            self.attestors,
            self.credentials,
            limits,
            entries=self.entries,
            manifests=self.manifests,
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
        self.leases = LeaseService(
            self.store,
            self.auditor,
            self.clock,
            DownstreamTokenIssuer(self.keys, issuer, self.clock),
            targets={n: parse_target(n, raw) for n, raw in settings.lease_postgres.items()},
            services=_services(settings),
            reaper_interval=settings.lease_reaper_interval,
        )
        self.tasks.on_end("leases", self.leases.revoke_for_tasks)
        self.key_service = KeyService(
            self.store,
            self.keys,
            self.verifier,
            self.auditor,
            self.clock,
            grace=settings.key_retire_grace,
        )
        self.introspection = IntrospectionService(
            self.store,
            self.credentials,
            self.liveness,
            self.leases,
            self.keys,
            self.auditor,
            self.clock,
            issuer=issuer,
        )
        if not isinstance(self.store, SQLStore):
            raise InvalidParameterError("replication needs the SQL store")
        self.replication = Replication(
            self.store,
            self.state,
            open_change_channel(self.store, self.clock),
            self.clock,
            url=settings.effective_advertise_url if settings.serves_api else None,
            resync_interval=settings.resync_interval,
            heartbeat_interval=settings.heartbeat_interval,
            max_staleness=settings.replication_max_staleness,
            handlers={
                "policy.reload": lambda _: self._follow_policies(),
                "keys.changed": lambda _: self.key_service.reload(),
                "modes.changed": lambda _: self.modes.load(),
                "resync": lambda _: self._refresh_all(),
                OPERATOR_CHANGED: self.operators.forget,
            },
        )
        self.policy_sync = PolicySync(
            self.store,
            self.pdp,
            self.clock,
            max_staleness=settings.policy_max_staleness,
            on_activated=self._policies_activated,
            on_rejected=self._policies_rejected,
        )
        self.key_service.announce = self.replication.announce
        self.operators.announce = self.replication.announce
        self.modes.on_change = lambda: self.replication.announce("modes.changed", {})
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
            counters=self.counters,
        )
        self.approvals.load()
        self.monitor = BehaviourMonitor(settings.behaviour, self.counters)
        self.behaviour = BehaviourService(
            self.store, self.monitor, self.auditor, self.clock, self.notifier, self.agents.suspend
        )
        self.behaviour.load()
        self.behaviour.announce = self.replication.announce
        self.replication.on("baseline.declared", self.behaviour.declared_changed)
        self.outage = OutageService(
            OutageJournal(settings.data_dir / JOURNAL_NAME),
            self.state,
            self.tasks,
            self.credentials,
            self.agents,
            self.clock,
            replica=self.replication.replica_id,
        )
        self.outage.restore()  # what was accepted during an outage before a restart still holds
        self.decisions = DecisionService(
            self.pdp,
            self.credentials,
            self.liveness,
            self.state,
            self.modes,
            self.auditor,
            self.clock,
            self.approvals,
            self.monitor,
            freshness=self.replication.freshness,
        )
        if self.pdp.policy_set is not None:
            self.decisions.policies_loaded(self.pdp.policy_set)
        self._build_governance(settings, issuer)
        self.signals = SignalService(
            self.store,
            self.keys,
            self.auditor,
            self.clock,
            issuer=issuer,
            spiffe_of=self._spiffe_of,
            max_backoff=settings.signals_max_backoff,
            timeout=settings.signals_push_timeout,
        )
        self._watcher: PolicyWatcher | None = None
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None
        self._loops: list[threading.Thread] = []
        self._governor: threading.Thread | None = None

    def _build_governance(self, settings: Settings, issuer: str) -> None:
        """Owners and lifecycle, certification, checkpoints, export, attribution (issue 7)."""
        self.ownership = OwnershipService(
            self.store,
            self.state,
            self.agents,
            self.auditor,
            self.clock,
            LifecyclePolicy(
                orphan_grace=settings.orphan_grace,
                unused_after=settings.unused_after,
                flag_grace=settings.flag_grace,
            ),
        )
        self.certification = CertificationService(
            self.store,
            self.agents,
            self.auditor,
            self.clock,
            window=settings.certification_window,
            on_timeout=TimeoutAction(settings.certification_on_timeout),
            flush_audit=self.writer.flush,
        )
        self.checkpoints = CheckpointService(
            self.store,
            self.keys,
            self.writer,
            self.clock,
            issuer=issuer,
            sinks=[
                make_sink(t, self.store, self.clock, name=f"checkpoints:{t}")
                for t in settings.checkpoint_sinks
            ],
        )
        self.export = ExportService(
            self.store,
            [
                (make_sink(t, self.store, self.clock, name=f"{fmt}:{t}"), fmt)
                for t, fmt in settings.export_sinks
            ],
        )
        self.attribution = AttributionService(self.store)
        self.explainer = DecisionExplainer(
            self.store, self.pdp, self._approval_view, self.evidence_jwks, settings.policies_dir
        )
        self.thresholds = Thresholds(
            orphan_grace=settings.orphan_grace,
            flag_grace=settings.flag_grace,
            checkpoint_interval=settings.checkpoint_interval,
        )

    def _approval_view(self, request_id: str) -> dict[str, Any] | None:
        try:
            return self.approvals.view(self.approvals.get(request_id))
        except NotFoundError:
            return None

    def _spiffe_of(self, agent_name: str) -> str | None:
        agent = self.state.agents_by_name.get(agent_name)
        if agent is None:
            try:
                agent = self.store.fetch_agent(agent_name)
            except Exception:  # gone or unreachable: the event names the agent by name
                return None
        return agent.spiffe_id

    def _trace_commit(self, start_ns: int, end_ns: int, records: int) -> None:
        self.tracing.record_span(
            "warden.audit.commit", start_ns, end_ns, {"warden.audit.records": records}
        )

    def evidence_jwks(self) -> dict[str, Any]:
        """Every public key that ever signed (retired ones too): what verifies checkpoints."""
        return historical_jwks(self.store.list_signing_keys())

    def controls_report(
        self, start: float, end: float, progress: Callable[[int], object] | None = None
    ) -> dict[str, Any]:
        self.writer.flush()
        return controls_report(
            self.store,
            self.evidence_jwks(),
            start=start,
            end=end,
            now=self.clock.now(),
            thresholds=self.thresholds,
            progress=progress,
            checkpoint_sinks=len(self.checkpoints.sinks),
        )

    def governance_tick(self) -> None:
        self.ownership.tick()
        self.certification.tick()

    # -- policies -----------------------------------------------------------------------------
    def _policies_loaded(self, lps: LoadedPolicySet) -> None:
        """A set loaded from this replica's folder: activate here and everywhere (ADR 0120)."""
        # activated and published in one step under the poll's lock, before the activation is
        # recorded (which waits for an audit commit, ADR 0090)
        published = self.policy_sync.adopt(lps, by=self.replication.replica_id)
        self._policies_activated(lps)
        if published:
            self.replication.announce("policy.reload", {"revision": lps.revision})

    def _policies_activated(self, lps: LoadedPolicySet) -> None:
        self.policy_error = None
        self.policy_errors = []
        self.decisions.policies_loaded(lps)
        self.auditor.record(
            "policy.loaded",
            "warden",
            {"revision": lps.revision, "policies": len(lps.policy_ids)},
        )

    def _policies_rejected(self, exc: Exception) -> None:
        self.policy_error = str(exc)
        detail = getattr(exc, "detail", None) or {}
        self.policy_errors = list(detail.get("errors") or [])[:50]
        log.warning("policy change rejected, last good set keeps serving: %s", exc)
        self.auditor.record(
            "policy.rejected",
            "warden",
            {
                "error": str(exc)[:2000],
                # each with file, line, column, snippet, message (authz/source.py)
                "errors": self.policy_errors,
                "serving_revision": self.pdp.revision,
            },
        )

    def _follow_policies(self) -> None:
        self.policy_sync.sync()

    def reload_policies(self, *, announce: bool = True) -> str:
        if self.settings.policies_dir is None:
            raise PolicyError("no policy folder is configured")
        watcher = self._watcher
        try:
            if announce and watcher is not None:  # serialised with the folder poll
                return watcher.load_now().revision  # activates through _policies_loaded
            lps = load_policy_dir(self.settings.policies_dir)
        except PolicyError as exc:
            self._policies_rejected(exc)
            raise
        if announce:
            self._policies_loaded(lps)
        else:
            self.pdp.activate(lps)
            self._policies_activated(lps)
        return lps.revision

    def _refresh_all(self) -> None:
        self.outage.restore()  # a resync must not undo what is journaled but not yet written
        self.operators.forget()
        self.key_service.reload()
        self.modes.load()

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        self.writer.start()
        self.refusals.start()
        if self.pdp.policy_set is not None and self.settings.policies_dir is not None:
            self._policies_loaded(self.pdp.policy_set)  # this replica's folder is published
        else:
            self.policy_sync.sync()  # follow the published revision
        if self.settings.policies_dir is not None:
            self._watcher = PolicyWatcher(
                self.settings.policies_dir,
                self.pdp,
                interval=self.settings.policy_reload_interval,
                activate=self._policies_loaded,
                on_error=self._policies_rejected,
            )
            self._watcher.start()
        self._sweeper = threading.Thread(target=self._sweep_loop, name="warden-expiry", daemon=True)
        self._sweeper.start()
        self.replication.start()
        self.leases.start()
        # confirm the active revision well within the staleness bound (one small row read)
        settings = self.settings
        sync_every = max(
            0.05, min(settings.policy_reload_interval, settings.policy_max_staleness / 4)
        )
        self._every("warden-policies", sync_every, self.policy_sync.sync)
        self._every("warden-outage-journal", 1.0, self.outage.replay)
        if self.primary:
            self._every("warden-governance", settings.governance_interval, self.governance_tick)
            self._every("warden-checkpoints", settings.checkpoint_interval, self.checkpoints.tick)
            if self.export.sinks:  # a file sink is its own cursor: one writer per host
                self._every("warden-export", settings.export_interval, self.export.tick)
            self._every("warden-signals", settings.signals_interval, self.signals.tick)
        self.webhooks.start()
        self._governor = threading.Thread(
            target=self._governance_loop, name="warden-approvals-behaviour", daemon=True
        )
        self._governor.start()

    def _every(self, name: str, interval: float, work: Callable[[], object]) -> None:
        """Run ``work`` every ``interval`` seconds until ``close()``; errors are retried."""

        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    work()
                except Exception:  # a database hiccup must not end the loop
                    log.exception("%s failed; retrying next tick", name)

        thread = threading.Thread(target=loop, name=name, daemon=True)
        thread.start()
        self._loops.append(thread)

    def _sweep_loop(self) -> None:
        next_housekeeping = time.monotonic()
        while not self._stop.wait(self.settings.expiry_sweep_interval):
            try:
                self.tasks.sweep_expired()
            except Exception:  # the loop must survive a database hiccup; it retries next tick
                log.exception("expiry sweep failed")
            try:
                self.attestation.refresh_due()  # bundle endpoints past their refresh hint
            except Exception:
                log.exception("trust bundle refresh failed")
            if self.primary and time.monotonic() >= next_housekeeping:
                next_housekeeping = time.monotonic() + self.settings.housekeeping_interval
                try:
                    self.housekeeping()
                except Exception:
                    log.exception("housekeeping failed")

    def housekeeping(self) -> None:
        """Slow chores: forget old DPoP proofs and change-log rows, retire unneeded keys."""
        now = self.clock.now()
        self.store.prune_proofs(now=now)
        self.store.prune_changes(before=now - 3600)
        self.signals.prune()
        self.key_service.retire_due()

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
        self.feed.close()  # live event streams end (embedded servers have no uvicorn hook)
        try:  # anchor the tail of the log before going away
            self.checkpoints.create()
        except Exception:
            log.exception("final audit checkpoint failed")
        self.leases.close()
        self.replication.close()
        if self._watcher is not None:
            self._watcher.stop()
        if self._sweeper is not None:
            self._sweeper.join(5)
        for thread in self._loops:
            thread.join(5)
        if self._governor is not None:
            self.monitor.wake.set()
            self._governor.join(5)
        try:
            self.behaviour.drain()
            self.behaviour.persist()
        except Exception:
            log.exception("could not flush behaviour state at shutdown")
        if self.counters is not None:
            self.counters.close()
        self.webhooks.close()
        self.refusals.close()
        try:
            self.signals.release()
        except Exception:
            log.exception("could not release the Shared Signals push leases")
        self.writer.close()
        self.tracing.shutdown()
        self.store.close()

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir


def _tracing(settings: Settings) -> Tracing:
    if not settings.otlp_endpoint:
        return NO_TRACING
    return otlp_tracing(
        settings.otlp_endpoint,
        service_name=settings.otlp_service_name,
        headers=dict(settings.otlp_headers),
        sample_ratio=settings.otlp_sample_ratio,
    )


def _head_file(settings: Settings, store: Store) -> HeadFile:
    """The chain head outside the database, checked against it once at start (ADR 0091)."""
    head = HeadFile(settings.data_dir / HEAD_FILE)
    if head.seq:
        seq, _ = store.audit_head()
        found = store.list_audit(after_seq=head.seq - 1, limit=1)
        head.reconcile({r.seq: r.hash for r in found}, seq)
    return head


def _key_encryption_key(settings: Settings, store: Store) -> KeyEncryptionKey:
    """``WARDEN_KEY_ENCRYPTION_KEY``, else the KEK file (created only while no keys exist)."""
    if settings.key_encryption_key:
        return KeyEncryptionKey.from_text(settings.key_encryption_key)
    return KeyEncryptionKey.load(settings.effective_kek_file, create=not store.list_signing_keys())


def _services(settings: Settings) -> dict[str, Any]:
    services = {n: parse_service(n, raw) for n, raw in settings.lease_services.items()}
    for service in services.values():
        # a service's tokens must never be accepted as task credentials, and vice versa
        if service.audience in settings.accepted_audiences:
            raise InvalidParameterError(
                f"config `leases.services.{service.name}.audience` is one of Warden's own "
                "audiences: pick another"
            )
    return services


def shared_counters(settings: Settings) -> SharedCounters | None:
    """The counter backend shared by every replica (ADR 0094), or None: in this process.

    PostgreSQL means replicas are likely, and in-process budgets then hold per replica: say so
    loudly at start rather than put a write transaction on every decision (ADR 0094)."""
    if settings.counters_url:
        from urllib.parse import urlsplit

        from warden.storage.redis_counters import RedisCounters

        where = urlsplit(settings.counters_url)  # host and port only: never a password in logs
        log.info(
            "budgets, rate windows and deny streaks are shared through Redis at %s:%s",
            where.hostname,
            where.port or 6379,
        )
        return RedisCounters(
            settings.counters_url,
            prefix=settings.counters_prefix,
            timeout=settings.counters_timeout,
        )
    url = settings.database_url or ""
    if url.startswith("postgresql") and settings.serves_api:
        log.warning(
            "behaviour budgets, rate windows and deny streaks are kept per replica: with several "
            "replicas on this PostgreSQL an agent gets each budget once per replica; set "
            "`counters.url` (WARDEN_COUNTERS_URL) to a Redis all replicas share (ADR 0094)"
        )
    return None
