"""Prometheus metrics of the MCP proxy over HTTP (``GET /metrics`` on the proxy).

The latency the proxy adds to a tool call is its round trip to the PDP
(``warden_mcp_decision_duration_seconds``); ``warden_mcp_message_duration_seconds`` is the
whole message, upstream included. Labels are bounded: the PDP call kind and the MCP method
(unknown methods count as ``other``).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram

METHODS = frozenset(
    {
        "initialize",
        "tools/call",
        "tools/list",
        "resources/list",
        "resources/read",
        "resources/templates/list",
        "prompts/list",
        "prompts/get",
        "notifications/initialized",
        "ping",
    }
)
BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)


class ProxyMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.decision_seconds = Histogram(
            "warden_mcp_decision_duration_seconds",
            "The proxy's round trip to the PDP per message (what it adds to a tool call), by "
            "call kind (evaluate, evaluations)",
            ["kind"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.message_seconds = Histogram(
            "warden_mcp_message_duration_seconds",
            "Time to answer one JSON-RPC message, upstream included, by MCP method",
            ["method"],
            buckets=BUCKETS,
            registry=self.registry,
        )

    def decided(self, kind: str, seconds: float) -> None:
        self.decision_seconds.labels(
            kind if kind in ("evaluate", "evaluations") else "other"
        ).observe(seconds)

    def answered(self, method: object, seconds: float) -> None:
        label = method if isinstance(method, str) and method in METHODS else "other"
        self.message_seconds.labels(label).observe(seconds)
