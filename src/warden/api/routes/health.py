"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from warden.api.deps import warden_of
from warden.api.errors import json_response

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> Response:
    return json_response({"status": "ok"})


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    w = warden_of(request)
    freshness = w.policy_sync.status()
    state = w.replication.freshness.status()
    checks: dict[str, object] = {
        "policies": w.pdp.policy_set is not None,
        "policy_fresh": not freshness.stale,
        "state_fresh": not state.stale,
        "audit_backlog": w.writer.backlog,
        "audit_available": w.writer.available,
    }
    # shared counters (ADR 0094): while they do not answer every agent decision is refused
    counters = await run_in_threadpool(w.counters.problem) if w.counters is not None else None
    checks["counters"] = "local" if w.counters is None else (counters or "ok")
    ready = (
        bool(checks["policies"])
        and not freshness.stale
        and counters is None
        and bool(checks["audit_available"])
        and not state.stale
    )
    body: dict[str, Any] = {
        "status": "ready" if ready else "not_ready",
        "checks": checks,
        # how fresh this replica's view of revocations is (ADR 0092)
        "state": state.to_dict(),
        **(
            {"reason": f"state_stale: {state.reason} ({state.age:.1f}s old)"} if state.stale else {}
        ),
        "policy_revision": w.pdp.revision,
        "policy_error": w.policy_error,
        # the revision this replica serves vs the one all replicas must serve (ADR 0120)
        "policy": freshness.to_dict(),
    }
    if not checks["audit_available"]:  # ADR 0090: refusing decisions and changes
        body["reason"] = "audit_unavailable"
        body["audit_error"] = w.writer.unavailable_reason
    # every cause at once (`reason` names the most severe one): an operator facing a replica
    # that is both cut off and unable to write its audit must see both
    body["reasons"] = [
        code
        for code, failing in (
            ("audit_unavailable", not checks["audit_available"]),
            ("state_stale", state.stale),
            ("counters_unavailable", counters is not None),
            ("policies_not_loaded", not checks["policies"]),
            ("policy_stale", freshness.stale),
        )
        if failing
    ]
    return json_response(body, 200 if ready else 503)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    w = warden_of(request)
    metrics = request.app.state.metrics
    metrics.refresh(w)
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
