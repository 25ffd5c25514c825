"""The MCP proxy over HTTP with tracing on: one ``warden.mcp`` span per JSON-RPC message, a
child of the MCP client's ``traceparent``, exported to a real OTLP/HTTP receiver; and the
proxy's own ``/metrics`` (its decision round trip and per-method latency)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.signals.receivers import OTLPReceiver
from warden.telemetry import otlp_tracing

from .conftest import LiveWarden, ThreadServer

pytestmark = [pytest.mark.signals, pytest.mark.enforcement]

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


def test_the_proxy_traces_each_message(live_warden: LiveWarden, tmp_path: Path) -> None:
    from warden.mcp.config import parse_proxy_config
    from warden.mcp.http import create_proxy_app, embedded_check
    from warden.mcp.proxy import Gate
    from warden.sdk.embedded import EmbeddedPDP

    collector = OTLPReceiver()
    tracing = otlp_tracing(collector.endpoint, service_name="warden-mcp-proxy", batch=False)
    port = live_warden.proxy_ports[1]
    resource = f"http://127.0.0.1:{port}/mcp"
    config = parse_proxy_config(
        {
            "warden": {"embedded": {"data_dir": str(tmp_path / "data")}},
            "upstreams": [
                {
                    "name": "helpdesk",
                    "command": [sys.executable, "-m", "warden.examples.mcp_helpdesk"],
                }
            ],
        }
    )
    check, issuer = embedded_check(live_warden.warden, resource)
    app = create_proxy_app(
        config,
        Gate(EmbeddedPDP(live_warden.warden)),
        check,
        resource=resource,
        issuer=issuer,
        tracing=tracing,
    )
    task = live_warden.start_task(live_warden.register(), audience=resource)
    headers = {
        "Authorization": f"Bearer {task['access_token']}",
        "traceparent": f"00-{TRACE}-{PARENT}-01",
        "Accept": "application/json, text/event-stream",
    }
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        },
    }
    try:
        with ThreadServer(app, port):
            r = httpx.post(resource, json=init, headers=headers, timeout=30)
            assert r.status_code == 200, r.text
            session = {**headers, "Mcp-Session-Id": r.headers["mcp-session-id"]}
            listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}
            r = httpx.post(resource, json=listing, headers=session, timeout=30)
            assert r.status_code == 200, r.text
            scraped = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        families = {f.name: f for f in text_string_to_metric_families(scraped)}
        decided = families["warden_mcp_decision_duration_seconds"]
        assert decided.type == "histogram"
        assert any(s.name.endswith("_count") and s.value >= 1 for s in decided.samples)
        methods = {
            s.labels["method"]
            for s in families["warden_mcp_message_duration_seconds"].samples
            if s.name.endswith("_count")
        }
        assert {"initialize", "tools/list"} <= methods
        deadline = time.monotonic() + 10
        while not collector.named("warden.mcp") and time.monotonic() < deadline:
            time.sleep(0.05)
        span = collector.named("warden.mcp")[0]
        assert span.trace_id == TRACE and span.parent_span_id == PARENT
        assert span.attributes["mcp.method.name"] == "initialize"
        assert all(task["access_token"] not in str(v) for v in span.attributes.values())
    finally:
        tracing.shutdown()
        collector.server.close()
