"""Metrics and traces as an operator's Prometheus and OTLP collector see them."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import World
from tests.signals.conftest import MakeWorld
from tests.signals.receivers import OTLPReceiver

pytestmark = pytest.mark.signals

DOC = Path(__file__).parents[2] / "docs" / "observability.md"
PARENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{PARENT_TRACE}-00f067aa0ba902b7-01"


def _activity(world: World, headers: dict[str, str] | None = None) -> dict[str, str]:
    world.register()
    task = world.start_task()
    r = world.client.post(
        "/access/v1/evaluation",
        json={
            "subject": {
                "type": "agent",
                "id": task["spiffe_id"],
                "properties": {"token": task["access_token"]},
            },
            "action": {"name": "tools/call"},
            "resource": {"type": "tool", "id": "tickets.read"},
            "context": {"arguments": {"secret_argument": "hunter2"}},
        },
        headers=headers or {},
    )
    assert r.status_code == 200, r.text
    fa = world.client.get(
        "/v1/forward-auth",
        headers={
            "Authorization": f"Bearer {task['access_token']}",
            "X-Original-URI": "/tickets",
            "X-Original-Method": "GET",
        },
    )
    assert fa.status_code in (200, 403), fa.text
    world.warden.writer.flush()
    return {**task, "decision_id": r.json()["context"]["decision_id"]}


def test_metrics_parse_are_documented_and_bounded(world: World) -> None:
    task = _activity(world)
    text = world.client.get("/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in (
        "warden_decision_duration_seconds",
        "warden_token_duration_seconds",
        "warden_forward_auth_duration_seconds",
        "warden_audit_commit_duration_seconds",
    ):
        assert families[name].type == "histogram", name
    assert families["warden_replication_staleness_seconds"].type == "gauge"
    assert families["warden_approvals_pending"].type == "gauge"
    assert families["warden_ssf_events"].type == "counter"
    decided = {
        (s.labels["endpoint"], s.labels["outcome"])
        for s in families["warden_decision_duration_seconds"].samples
        if s.name.endswith("_count") and s.value > 0
    }
    assert ("evaluation", "allow") in decided
    assert {"forward_auth"} <= {e for e, _ in decided}
    tokens = {
        s.labels["grant"]
        for s in families["warden_token_duration_seconds"].samples
        if s.name.endswith("_count")
    }
    assert "token_exchange" in tokens
    # no agent, task or credential ids as label values: cardinality stays bounded
    ids = (task["task_id"], task["spiffe_id"], "support-bot")
    for family in families.values():
        for sample in family.samples:
            assert not any(i in v for v in sample.labels.values() for i in ids), sample
    documented = DOC.read_text()
    for name, family in families.items():
        if name.startswith("warden_") and not name.endswith("_created"):
            assert f"`{name}" in documented, f"{name} is not in docs/observability.md"
            assert family.documentation, name
    for name in families:  # Prometheus conventions: a unit suffix on every histogram
        if families[name].type == "histogram":
            assert name.endswith("_seconds"), name


def test_promtool_accepts_the_metrics(world: World) -> None:
    from tests.signals.promtool import promtool

    _activity(world)
    text = world.client.get("/metrics").text
    checked = subprocess.run(
        [promtool(), "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip() == "" and checked.stderr.strip() == "", "lint findings"


@pytest.fixture
def collector() -> Iterator[OTLPReceiver]:
    rx = OTLPReceiver()
    yield rx
    rx.server.close()


def _wait(collector: OTLPReceiver, name: str, world: World) -> None:
    deadline = time.monotonic() + 10
    while not collector.named(name):
        world.warden.tracing.flush()
        if time.monotonic() > deadline:
            raise AssertionError(f"no {name} span: {[s.name for s in collector.spans]}")
        time.sleep(0.05)


def test_traces_reach_a_real_otlp_receiver(make_world: MakeWorld, collector: OTLPReceiver) -> None:
    world = make_world(otlp_endpoint=collector.endpoint)
    assert world.warden.tracing.enabled
    task = _activity(world, headers={"traceparent": TRACEPARENT})
    for name in ("warden.decision", "warden.token", "warden.forward_auth", "warden.audit.commit"):
        _wait(collector, name, world)
    assert all(ct == "application/x-protobuf" for ct in collector.content_types)
    decision = next(s for s in collector.named("warden.decision") if s.trace_id == PARENT_TRACE)
    attrs = decision.attributes
    assert attrs["warden.decision"] == "allow"
    assert attrs["warden.decision_id"] == task["decision_id"]
    assert attrs["warden.task"] == task["task_id"]
    assert attrs["warden.agent"] == "support-bot"
    assert attrs["warden.tool"] == "tickets.read"
    assert attrs["warden.policies"]
    # the PEP's trace continues: the server span is a child of the caller's span
    server = [s for s in collector.spans if s.trace_id == PARENT_TRACE and s.name == "POST"]
    assert server and server[0].parent_span_id == "00f067aa0ba902b7"
    # never secrets or raw arguments
    for span in collector.spans:
        for value in span.attributes.values():
            text = str(value)
            assert task["access_token"] not in text and "hunter2" not in text
    # the audit record points at the trace, the span at the decision
    record = next(
        r for r in world.audit("authz.decision") if r["decision_id"] == task["decision_id"]
    )
    assert record["data"]["trace"]["trace_id"] == PARENT_TRACE
    assert record["data"]["trace"]["span_id"] == decision.span_id


def test_tracing_is_off_unless_configured(world: World) -> None:
    assert not world.warden.tracing.enabled
    task = _activity(world, headers={"traceparent": TRACEPARENT})
    record = next(
        r for r in world.audit("authz.decision") if r["decision_id"] == task["decision_id"]
    )
    assert "trace" not in record["data"]
    r = world.client.get("/healthz", headers={"traceparent": TRACEPARENT})
    assert "traceparent" not in r.headers


def test_a_malformed_traceparent_starts_a_new_trace(
    make_world: MakeWorld, collector: OTLPReceiver
) -> None:
    world = make_world(otlp_endpoint=collector.endpoint)
    r = world.client.get("/healthz", headers={"traceparent": "00-zz-nope-01"})
    assert r.status_code == 200
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01", r.headers["traceparent"])


def test_approvals_are_traced(tmp_path: Path, collector: OTLPReceiver) -> None:
    from tests.approvals.conftest import ENTITLEMENTS, make_world

    for aw in make_world(tmp_path, otlp_endpoint=collector.endpoint):
        aw.register(entitlements=ENTITLEMENTS)
        task = aw.start_task(scope="tickets.read tickets.delete")
        body = aw.call(task, "tickets.delete", arguments={"ticket": "T-1"})
        request_id = body["context"]["approval_request"]["id"]
        assert aw.approve(request_id).status_code == 200
        _wait(collector, "warden.approval", aw)
        approval = collector.named("warden.approval")[0]
        assert approval.attributes["warden.approval_id"] == request_id
        assert approval.attributes["warden.approve"] is True
        held = [
            s
            for s in collector.named("warden.decision")
            if s.attributes.get("warden.approval_id") == request_id
        ]
        assert held and held[0].attributes["warden.decision"] == "deny"
