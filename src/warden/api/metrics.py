"""Prometheus metrics for one process (own registry, so several apps can live in one test run)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from warden.service.container import Warden


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
        self.tokens = Counter(
            "warden_token_requests_total",
            "Token endpoint requests",
            ["outcome"],
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

    def count(self, allowed: bool) -> None:
        (self.allowed if allowed else self.denied).inc()

    def refresh(self, w: Warden) -> None:
        self.audit_backlog.set(w.writer.backlog)
        self.active_tasks.set(len(w.state.tasks))
        self.revoked.set(len(w.state.revoked))
