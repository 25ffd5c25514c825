"""``build_services``: every component from Settings, in one pass, in dependency order (ADR 0151).

Constructor injection only. Where a component once needed another that was built after it, the
cycle is broken at construction instead of wired late:

* replication's sending half (``Announcer``: replica id + change channel) is built first and
  passed to hot state, keys, operators, modes and baselines; its receiving half
  (``Replication``) is built last with handlers that reach them;
* the replication freshness tracker is built before the decision path that reads it;
* the webhook dispatcher reports each attempt to the auditor (``delivery_reporter``), not to
  the notifier that sends through it;
* leases are built before tasks, which get their end listener at construction; liveness and
  credential verification (ADR 0152) before the task lifecycle, introspection and decisions;
* policy reactions (``PolicyStatus``) are built before ``PolicySync`` that reports to them, and
  publishing a folder's set (``PolicyPublisher``) after it.

Nothing here starts a thread: the loops are ``Runtime``'s (``Warden.start()``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, cast

from warden.audit.head import HEAD_FILE, HeadFile
from warden.audit.writer import AuditWriter
from warden.authz.pdp import PolicyDecisionPoint
from warden.authz.policy_set import load_policy_dir
from warden.behaviour import BehaviourMonitor, SharedCounters
from warden.bootstrap.services import Services
from warden.bootstrap.stores import change_channel, open_configured_store
from warden.broker.templates import parse_service, parse_target
from warden.config import Settings
from warden.core.clock import Clock, SystemClock
from warden.core.governance import TimeoutAction
from warden.core.ports import Store
from warden.core.signals import SignalStore
from warden.errors import InvalidParameterError, NotFoundError
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
from warden.service.freshness import Freshness
from warden.service.introspection import IntrospectionService
from warden.service.join_tokens import JoinTokenService
from warden.service.keys import KeyService
from warden.service.leases import LeaseService
from warden.service.liveness import Liveness
from warden.service.manifests import ManifestService
from warden.service.modes import ModeService
from warden.service.notifications import Notifier, delivery_reporter
from warden.service.operators import CHANGED as OPERATOR_CHANGED
from warden.service.operators import OperatorService
from warden.service.outage import OutageService
from warden.service.outage_journal import JOURNAL_NAME, OutageJournal
from warden.service.ownership import LifecyclePolicy, OwnershipService
from warden.service.pins import ToolPinService
from warden.service.policy_activation import PolicyPublisher, PolicyStatus
from warden.service.policy_sync import PolicySync
from warden.service.refusals import RefusalLog
from warden.service.replication import Announcer, Replication
from warden.service.signals import SignalService
from warden.service.sinks import make_sink
from warden.service.state import HotState
from warden.service.tasks import TaskLimits, TaskService
from warden.service.workload import WorkloadService
from warden.telemetry import NO_TRACING, Tracing, otlp_tracing
from warden.tokens.downstream import DownstreamTokenIssuer
from warden.tokens.dpop import DPoPVerifier
from warden.tokens.issuer import TaskCredentialIssuer
from warden.tokens.sealed import KeyEncryptionKey, SealedKeyManager, historical_jwks
from warden.tokens.verifier import TaskCredentialVerifier
from warden.webhooks import WebhookDispatcher

log = logging.getLogger("warden")

__all__ = ["build_services", "shared_counters"]


def build_services(
    settings: Settings, *, clock: Clock | None = None, store: Store | None = None
) -> Services:
    """Every component of one process. ``store``: one already open (tests, an in-memory store);
    else the SQL store ``database.url`` names (SQLite in the data folder by default)."""
    clock = clock or SystemClock()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = store or open_configured_store(settings)
    store.migrate()
    counters = shared_counters(settings)
    feed = EventFeed(settings.log_events_level)
    tracing = _tracing(settings)
    audit = settings.audit
    writer = AuditWriter(
        store,
        on_written=feed.written,
        durability=audit.durability,
        max_wait=audit.max_wait,
        head=_head_file(settings, store),
        commit_observers=[_commit_span(tracing)] if tracing.enabled else [],
    )
    auditor = Auditor(writer, clock, tracing=tracing)
    keys = SealedKeyManager(store, _key_encryption_key(settings, store), clock)
    issuer_url = settings.effective_issuer
    issuer = TaskCredentialIssuer(keys, issuer_url, clock)
    verifier = TaskCredentialVerifier(
        keys, issuer=issuer_url, audiences=settings.accepted_audiences, clock=clock
    )

    replicas = settings.replication
    announcer = Announcer(change_channel(store, clock), clock)
    freshness = Freshness(max_staleness=replicas.max_staleness)
    state = HotState(announce=announcer)
    state.load(store, now=clock.now())

    entries = EntryService(store, state, auditor, clock)
    join_tokens = JoinTokenService(store, auditor, clock)
    attestation = build_attestation(settings, store, clock)
    workload = WorkloadService(
        entries, attestation.own, auditor, svid_ttl=settings.workload_svid_ttl
    )
    dpop = DPoPVerifier(clock, store, max_age=settings.dpop_max_age)
    pdp = PolicyDecisionPoint()
    if settings.policies_dir is not None:
        pdp.activate(load_policy_dir(settings.policies_dir))
    modes = ModeService(
        store,
        auditor,
        clock,
        settings.tier_modes,
        on_change=lambda: announcer("modes.changed", {}),
    )
    modes.load()
    operators = OperatorService(
        store, auditor, clock, token_ttl=settings.operator_token_ttl, announce=announcer
    )
    refusals = RefusalLog(auditor, clock)
    manifests = ManifestService(store, auditor, clock)
    pins = ToolPinService(store, auditor, clock)

    lease_settings = settings.leases
    leases = LeaseService(
        store,
        auditor,
        clock,
        DownstreamTokenIssuer(keys, issuer_url, clock),
        targets={n: parse_target(n, raw) for n, raw in lease_settings.postgres.items()},
        services=_lease_services(settings),
        reaper_interval=lease_settings.reaper_interval,
    )
    limits = _task_limits(settings)
    liveness = Liveness(store, state, clock)
    credentials = CredentialService(
        store,
        state,
        auditor,
        clock,
        issuer,
        verifier,
        dpop,
        liveness,
        credential_ttl=limits.credential_ttl,
        token_endpoint=limits.token_endpoint,
    )
    tasks = TaskService(
        store,
        state,
        auditor,
        clock,
        attestation.registry,
        credentials,
        limits,
        entries=entries,
        manifests=manifests,
        end_listeners=[("leases", leases.revoke_for_tasks)],
    )
    default_td = settings.trust_domains[0].name if settings.trust_domains else "warden.local"
    agents = AgentService(
        store,
        state,
        auditor,
        clock,
        default_trust_domain=default_td,
        end_tasks=tasks.end_all_for_agent,
    )
    key_service = KeyService(
        store,
        keys,
        verifier,
        auditor,
        clock,
        grace=settings.keys.retire_grace,
        announce=announcer,
    )
    introspection = IntrospectionService(
        store, credentials, liveness, leases, keys, auditor, clock, issuer=issuer_url
    )

    delivery = settings.webhook_delivery
    webhooks = WebhookDispatcher(
        delivery.endpoints,
        max_attempts=delivery.max_attempts,
        base_delay=delivery.base_delay,
        timeout=delivery.timeout,
        on_result=delivery_reporter(auditor),
    )
    notifier = Notifier(
        webhooks if delivery.endpoints else None, auditor, clock, settings.approvals.groups
    )
    approvals = ApprovalService(
        store,
        state,
        auditor,
        clock,
        settings.approvals,
        notifier,
        issuer_url,
        counters=counters,
    )
    approvals.load()
    monitor = BehaviourMonitor(settings.behaviour, counters)
    behaviour = BehaviourService(
        store, monitor, auditor, clock, notifier, agents.suspend, announce=announcer
    )
    behaviour.load()
    outage = OutageService(
        OutageJournal(settings.data_dir / JOURNAL_NAME),
        state,
        tasks,
        credentials,
        agents,
        clock,
        replica=announcer.replica_id,
    )
    outage.restore()  # what was accepted during an outage before a restart still holds

    decisions = DecisionService(
        pdp,
        credentials,
        liveness,
        state,
        modes,
        auditor,
        clock,
        approvals,
        monitor,
        freshness=freshness,
    )
    if pdp.policy_set is not None:
        decisions.policies_loaded(pdp.policy_set)
    policy_status = PolicyStatus(pdp, decisions, auditor)
    policy_sync = PolicySync(
        store,
        pdp,
        clock,
        max_staleness=settings.policy_max_staleness,
        on_activated=policy_status.activated,
        on_rejected=policy_status.rejected,
    )
    policies = PolicyPublisher(
        policy_sync, policy_status, pdp, announce=announcer, replica_id=announcer.replica_id
    )

    governance = settings.governance
    ownership = OwnershipService(
        store,
        state,
        agents,
        auditor,
        clock,
        LifecyclePolicy(
            orphan_grace=governance.orphan_grace,
            unused_after=governance.unused_after,
            flag_grace=governance.flag_grace,
        ),
    )
    certification = CertificationService(
        store,
        agents,
        auditor,
        clock,
        window=governance.certification_window,
        on_timeout=TimeoutAction(governance.certification_on_timeout),
        flush_audit=writer.flush,
    )
    checkpoints = CheckpointService(
        store,
        keys,
        writer,
        clock,
        issuer=issuer_url,
        sinks=[make_sink(t, store, clock, name=f"checkpoints:{t}") for t in audit.checkpoint_sinks],
    )
    export = ExportService(
        store,
        [(make_sink(t, store, clock, name=f"{fmt}:{t}"), fmt) for t, fmt in audit.export_sinks],
    )

    def approval_view(request_id: str) -> dict[str, Any] | None:
        try:
            return approvals.view(approvals.get(request_id))
        except NotFoundError:
            return None

    def spiffe_of(agent_name: str) -> str | None:
        agent = state.agents_by_name.get(agent_name)
        if agent is None:
            try:
                agent = store.fetch_agent(agent_name)
            except Exception:  # gone or unreachable: the event names the agent by name
                return None
        return agent.spiffe_id

    explainer = DecisionExplainer(
        store,
        pdp,
        approval_view,
        lambda: historical_jwks(store.list_signing_keys()),
        settings.policies_dir,
    )
    signals = SignalService(
        cast(SignalStore, store),  # the SQL store's; not (yet) part of the ``Store`` port
        keys,
        auditor,
        clock,
        issuer=issuer_url,
        spiffe_of=spiffe_of,
        max_backoff=settings.signals.max_backoff,
        timeout=settings.signals.push_timeout,
    )

    def follow_policies(_: dict[str, Any]) -> None:
        policy_sync.sync()

    def refresh_all(_: dict[str, Any]) -> None:
        outage.restore()  # a resync must not undo what is journaled but not yet written
        operators.forget()
        key_service.reload()
        modes.load()

    replication = Replication(
        store,
        state,
        announcer,
        clock,
        freshness=freshness,
        url=replicas.advertise_url,
        resync_interval=replicas.resync_interval,
        heartbeat_interval=replicas.heartbeat_interval,
        handlers={
            "policy.reload": follow_policies,
            "keys.changed": lambda _: key_service.reload(),
            "modes.changed": lambda _: modes.load(),
            "resync": refresh_all,
            OPERATOR_CHANGED: operators.forget,
            "baseline.declared": behaviour.declared_changed,
        },
    )
    return Services(
        clock=clock,
        store=store,
        counters=counters,
        feed=feed,
        tracing=tracing,
        writer=writer,
        auditor=auditor,
        keys=keys,
        issuer=issuer,
        verifier=verifier,
        announcer=announcer,
        freshness=freshness,
        state=state,
        entries=entries,
        join_tokens=join_tokens,
        attestation=attestation,
        attestors=attestation.registry,
        workload=workload,
        dpop=dpop,
        pdp=pdp,
        modes=modes,
        operators=operators,
        refusals=refusals,
        manifests=manifests,
        pins=pins,
        leases=leases,
        liveness=liveness,
        credentials=credentials,
        tasks=tasks,
        agents=agents,
        key_service=key_service,
        introspection=introspection,
        webhooks=webhooks,
        notifier=notifier,
        approvals=approvals,
        monitor=monitor,
        behaviour=behaviour,
        outage=outage,
        decisions=decisions,
        policy_status=policy_status,
        policy_sync=policy_sync,
        policies=policies,
        ownership=ownership,
        certification=certification,
        checkpoints=checkpoints,
        export=export,
        attribution=AttributionService(store),
        explainer=explainer,
        thresholds=Thresholds(
            orphan_grace=governance.orphan_grace,
            flag_grace=governance.flag_grace,
            checkpoint_interval=audit.checkpoint_interval,
        ),
        signals=signals,
        replication=replication,
    )


def _task_limits(settings: Settings) -> TaskLimits:
    tokens = settings.tokens
    return TaskLimits(
        credential_ttl=tokens.credential_ttl,
        credential_max_ttl=tokens.credential_max_ttl,
        task_ttl=tokens.task_ttl,
        task_max_ttl=tokens.task_max_ttl,
        issuer=settings.effective_issuer,
        accepted_audiences=tokens.accepted_audiences,
        max_delegation_depth=tokens.max_delegation_depth,
        dpop_required_tiers=tokens.dpop_required_tiers,
    )


def _tracing(settings: Settings) -> Tracing:
    telemetry = settings.telemetry
    if not telemetry.otlp_endpoint:
        return NO_TRACING
    return otlp_tracing(
        telemetry.otlp_endpoint,
        service_name=telemetry.service_name,
        headers=dict(telemetry.headers),
        sample_ratio=telemetry.sample_ratio,
    )


def _commit_span(tracing: Tracing) -> Callable[[int, int, int], None]:
    def observe(start_ns: int, end_ns: int, records: int) -> None:
        tracing.record_span(
            "warden.audit.commit", start_ns, end_ns, {"warden.audit.records": records}
        )

    return observe


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
    keys = settings.keys
    if keys.key_encryption_key:
        return KeyEncryptionKey.from_text(keys.key_encryption_key)
    return KeyEncryptionKey.load(keys.kek_file, create=not store.list_signing_keys())


def _lease_services(settings: Settings) -> dict[str, Any]:
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
    counters = settings.counters
    if counters.url:
        from urllib.parse import urlsplit

        from warden.storage.redis_counters import RedisCounters

        where = urlsplit(counters.url)  # host and port only: never a password in logs
        log.info(
            "budgets, rate windows and deny streaks are shared through Redis at %s:%s",
            where.hostname,
            where.port or 6379,
        )
        return RedisCounters(counters.url, prefix=counters.prefix, timeout=counters.timeout)
    url = settings.database_url or ""
    if url.startswith("postgresql") and settings.serves_api:
        log.warning(
            "behaviour budgets, rate windows and deny streaks are kept per replica: with several "
            "replicas on this PostgreSQL an agent gets each budget once per replica; set "
            "`counters.url` (WARDEN_COUNTERS_URL) to a Redis all replicas share (ADR 0094)"
        )
    return None
