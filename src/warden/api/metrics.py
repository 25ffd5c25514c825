"""Prometheus metrics for one process (own registry, so several apps can live in one test run).

Names follow the Prometheus conventions (``warden_…_seconds`` histograms, ``_total`` counters);
labels are bounded sets (endpoint, outcome, grant, delivery method): never agent or task ids.
docs/observability.md lists every metric.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from warden.bootstrap import Warden

# decisions take tens of microseconds to milliseconds; commits and pushes up to seconds
FAST = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
SLOW = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
DECISION_ENDPOINTS = ("evaluation", "evaluations", "forward_auth")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.decisions = Counter(
            "warden_decisions_total",
            "Authorization decisions",
            ["decision"],
            registry=self.registry,
        )
        # pre-bound children: a label lookup per decision would cost more than the increment
        self.allowed = self.decisions.labels(decision="allow")
        self.denied = self.decisions.labels(decision="deny")
        self.decision_seconds = Histogram(
            "warden_decision_duration_seconds",
            "Time to answer one authorization decision, by endpoint and outcome",
            ["endpoint", "outcome"],
            buckets=FAST,
            registry=self.registry,
        )
        self._decision_children = {
            (e, allowed): self.decision_seconds.labels(endpoint=e, outcome=o)
            for e in DECISION_ENDPOINTS
            for allowed, o in ((True, "allow"), (False, "deny"))
        }
        self.tokens = Counter(
            "warden_token_requests_total",
            "Token endpoint requests",
            ["outcome"],
            registry=self.registry,
        )
        self.token_seconds = Histogram(
            "warden_token_duration_seconds",
            "Token endpoint latency by grant (token_exchange, renewal) and outcome",
            ["grant", "outcome"],
            buckets=SLOW,
            registry=self.registry,
        )
        self.forward_auth_seconds = Histogram(
            "warden_forward_auth_duration_seconds",
            "Latency forward-auth adds to a proxied request (the whole check), by status",
            ["status"],
            buckets=FAST,
            registry=self.registry,
        )
        self.audit_commit_seconds = Histogram(
            "warden_audit_commit_duration_seconds",
            "Time to commit one batch of audit records (group commit)",
            buckets=SLOW,
            registry=self.registry,
        )
        self.audit_records = Counter(
            "warden_audit_records_written_total",
            "Audit records committed by this process",
            registry=self.registry,
        )
        self.audit_backlog = Gauge(
            "warden_audit_backlog", "Audit records waiting to be written", registry=self.registry
        )
        self.active_tasks = Gauge("warden_active_tasks", "Active tasks", registry=self.registry)
        self.revoked = Gauge(
            "warden_revoked_credentials",
            "Revoked, unexpired credentials in memory",
            registry=self.registry,
        )
        # replicas (issue 4): counters kept by the replication service, exported as gauges
        self.replication = Gauge(
            "warden_replication",
            "Changes sent and applied, publish failures and resyncs since this replica started",
            ["what"],
            registry=self.registry,
        )
        self.channel_connected = Gauge(
            "warden_replication_connected",
            "1 while this replica listens for other replicas' changes",
            registry=self.registry,
        )
        self.state_age = Gauge(
            "warden_replication_state_age_seconds",
            "Seconds since this replica last confirmed its view of the shared state (ADR 0092)",
            registry=self.registry,
        )
        self.outage_pending = Gauge(
            "warden_outage_journal_pending",
            "Changes accepted during a database outage and not yet written (ADR 0093)",
            registry=self.registry,
        )
        self.warden: Warden | None = None
        self.registry.register(_Live(self))

    def bind(self, w: Warden) -> None:
        """Observe what the Warden instance does off the request path (audit commits)."""
        self.warden = w
        w.writer.commit_observers.append(self._commit)

    def _commit(self, start_ns: int, end_ns: int, records: int) -> None:
        self.audit_commit_seconds.observe((end_ns - start_ns) / 1e9)
        self.audit_records.inc(records)

    def count(self, allowed: bool) -> None:
        (self.allowed if allowed else self.denied).inc()

    def decided(self, endpoint: str, allowed: bool, seconds: float) -> None:
        (self.allowed if allowed else self.denied).inc()
        self._decision_children[(endpoint, allowed)].observe(seconds)

    def refresh(self, w: Warden) -> None:
        self.audit_backlog.set(w.writer.backlog)
        self.active_tasks.set(len(w.state.tasks))
        self.revoked.set(len(w.state.revoked))
        stats = w.replication.stats
        for what in (
            "changes_sent",
            "changes_applied",
            "publish_failures",
            "resyncs",
            "resync_failures",
            "deny_applied",
        ):
            self.replication.labels(what).set(getattr(stats, what))
        # ADR 0092: the age of this replica's view (stale past replication.max_staleness)
        self.state_age.set(w.replication.freshness.status().age)
        self.outage_pending.set(w.outage.pending)
        self.channel_connected.set(1 if w.replication.channel.connected else 0)


class _Live(Collector):
    """Values read at scrape time: staleness, pending approvals, Shared Signals delivery."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        w = self._metrics.warden
        if w is None:
            return
        yield from _audit_health(w)
        now = w.clock.now()
        stats = w.replication.stats
        heard = max(
            (t for t in (stats.last_change_at, stats.last_resync_at) if t is not None), default=None
        )
        yield GaugeMetricFamily(
            "warden_replication_staleness_seconds",
            "Seconds since this replica last applied a change or resynced (0 before the first)",
            value=max(0.0, now - heard) if heard is not None else 0.0,
        )
        yield GaugeMetricFamily(
            "warden_approvals_pending",
            "Approval requests waiting for a human",
            value=w.approvals.pending_count(),
        )
        sig = w.signals.stats
        events = CounterMetricFamily(
            "warden_ssf_events",
            "Shared Signals events by outcome: queued, delivered, retried (a failed push), "
            "rejected (refused by the receiver)",
            labels=["outcome"],
        )
        for outcome in ("queued", "delivered", "retried", "rejected"):
            events.add_metric([outcome], getattr(sig, outcome))
        yield events
        pending = GaugeMetricFamily(
            "warden_ssf_events_pending",
            "Security Event Tokens in the outbox not yet delivered, by delivery method",
            labels=["delivery"],
        )
        try:
            counts = w.signals.pending()
        except Exception:  # a scrape must not fail with the database
            counts = {}
        for method, name in (("urn:ietf:rfc:8935", "push"), ("urn:ietf:rfc:8936", "poll")):
            pending.add_metric([name], counts.get(method, 0))
        yield pending


def _audit_health(w: Warden) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
    """Whether audit records are made durable within the bound (ADR 0090)."""
    yield GaugeMetricFamily(
        "warden_audit_available",
        "1 while audit records become durable within audit.max_wait; 0: requests are refused "
        "with audit_unavailable",
        value=1.0 if w.writer.available else 0.0,
    )
    yield CounterMetricFamily(
        "warden_audit_write_failures",
        "Failed attempts to commit an audit batch or write the audit head file",
        value=w.writer.failures,
    )
