"""Policies and enforcement modes: /v1/policies, and the monitor-mode report /v1/reports."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from warden.api.deps import any_operator, operator, read_object, warden_of
from warden.api.errors import json_response
from warden.api.paging import float_param, limit_of
from warden.authz.policy_set import load_policy_files
from warden.authz.schema import render_json, render_text
from warden.core.model import OperatorRole
from warden.errors import InvalidParameterError, NotFoundError
from warden.service.replay import files_of, parse_query, replay_files

router = APIRouter(tags=["policies"])


@router.get("/v1/policies")
async def show(request: Request) -> Response:
    await run_in_threadpool(any_operator, request)
    w = warden_of(request)
    lps = w.pdp.policy_set
    policies: list[dict[str, Any]] = []
    if lps is not None:
        for pid in lps.policy_ids:
            info = lps.policies[pid]
            policies.append(
                {
                    "id": pid,
                    "effect": info.effect,
                    "mode": info.mode,
                    "annotations": dict(info.annotations),
                    "source": info.source,
                    "line": info.line,
                }
            )
    return json_response(
        {
            "revision": w.pdp.revision,
            "folder": str(w.settings.policies_dir) if w.settings.policies_dir else None,
            "last_error": w.policy_error,
            # the rejected change's errors: file, line, column, snippet, message, policy
            "last_errors": w.policy_errors,
            "freshness": w.policy_sync.status().to_dict(),
            "policies": policies,
            "modes": w.modes.view(),
        }
    )


@router.get("/v1/policies/bundle")
async def bundle(request: Request) -> Response:
    """The active policy files, for embedded PDPs that keep a synced copy (``warden.sdk``)."""
    await run_in_threadpool(any_operator, request)
    lps = warden_of(request).pdp.policy_set
    if lps is None:
        raise NotFoundError("no policy set is active")
    return json_response({"revision": lps.revision, "files": dict(lps.sources)})


@router.get("/v1/policies/schema")
async def schema(request: Request) -> Response:
    """Warden's Cedar schema (text), and the one the active set was validated against."""
    await run_in_threadpool(any_operator, request)
    lps = warden_of(request).pdp.policy_set
    return json_response(
        {
            "schema": render_text(),
            "json": render_json(),
            "effective": lps.schema_text if lps is not None else None,
        }
    )


@router.post("/v1/policies/validate")
async def validate(request: Request) -> Response:
    """Validate a policy set sent as ``{"files": {name: text}}``; 422 lists every error."""
    await run_in_threadpool(any_operator, request)
    files = files_of(await read_object(request))
    lps = await run_in_threadpool(load_policy_files, files, origin="<request>")
    return json_response(
        {
            "ok": True,
            "revision": lps.revision,
            "policies": [lps.policies[pid].id for pid in lps.policy_ids],
            "notes": list(lps.schema_notes),
        }
    )


@router.post("/v1/policies/replay")
async def replay(request: Request) -> Response:
    """Re-evaluate recorded decisions with a candidate set and report what would change."""
    await run_in_threadpool(operator, request, OperatorRole.AUDITOR)
    body = await read_object(request)
    w = warden_of(request)
    files = files_of(body)
    query = parse_query(body, w.clock.now())

    def run() -> dict[str, Any]:
        w.writer.flush()
        report, crossed = replay_files(w.store, files, query)
        out = report.to_dict()
        out["serving_revision"] = w.pdp.revision
        out["thresholds"] = dict(query.thresholds)
        out["exceeded"] = crossed
        return out

    return json_response(await run_in_threadpool(run))


@router.post("/v1/policies/reload")
async def reload(request: Request) -> Response:
    await run_in_threadpool(operator, request)
    revision = await run_in_threadpool(warden_of(request).reload_policies)
    return json_response({"revision": revision})


@router.get("/v1/policies/modes")
async def modes(request: Request) -> Response:
    await run_in_threadpool(any_operator, request)
    return json_response(warden_of(request).modes.view())


@router.put("/v1/policies/modes")
async def set_mode(request: Request) -> Response:
    op = await run_in_threadpool(operator, request)
    body = await read_object(request)
    kind, value, mode = body.get("kind"), body.get("value"), body.get("mode")
    if not (isinstance(kind, str) and isinstance(value, str) and isinstance(mode, str)):
        raise InvalidParameterError("send `kind` (agent|risk_tier), `value` and `mode`")
    w = warden_of(request)
    if mode == "default":
        await run_in_threadpool(w.modes.clear, kind, value, f"operator:{op.name}")
    else:
        await run_in_threadpool(w.modes.set, kind, value, mode, f"operator:{op.name}")
    return json_response(w.modes.view())


@router.get("/v1/reports/monitor")
async def monitor_report(request: Request) -> Response:
    """Decisions that monitor mode let through but enforcement would have denied."""
    await run_in_threadpool(any_operator, request)
    w = warden_of(request)
    since = float_param(request, "since")
    limit = limit_of(request, default=1000)

    def collect() -> list[dict[str, Any]]:
        w.writer.flush()
        rows: list[dict[str, Any]] = []
        after = 0
        while len(rows) < limit:
            page = w.store.list_audit(
                after_seq=after, limit=1000, type_prefix="authz.decision", since=since
            )
            if not page:
                break
            for rec in page:
                monitor = rec.data.get("monitor")
                if monitor and monitor.get("would_deny") and rec.data.get("decision") == "allow":
                    rows.append(
                        {
                            "seq": rec.seq,
                            "ts": rec.ts,
                            "decision_id": rec.decision_id,
                            "agent": rec.agent,
                            "task": rec.task_id,
                            "action": rec.data.get("action"),
                            "resource": rec.data.get("resource"),
                            "would_deny_by": monitor.get("by"),
                            "policies": monitor.get("policies", []),
                        }
                    )
            after = page[-1].seq
        return rows[:limit]

    rows = await run_in_threadpool(collect)
    return json_response({"would_have_denied": rows, "count": len(rows)})
