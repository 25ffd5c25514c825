"""Behavioural governance: /v1/findings and /v1/agents/{name}/baseline."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from warden.api.deps import any_operator, operator, read_object, warden_of
from warden.api.errors import json_response
from warden.api.paging import float_param, limit_of
from warden.core.model import Severity
from warden.errors import InvalidParameterError
from warden.service.behaviour import finding_view

router = APIRouter(tags=["behaviour"])


@router.get("/v1/findings")
async def list_findings(request: Request) -> Response:
    await run_in_threadpool(any_operator, request)
    q = request.query_params
    severity = q.get("severity")
    if severity is not None and severity not in {s.value for s in Severity}:
        raise InvalidParameterError(f"unknown severity `{severity[:40]}`")
    limit = limit_of(request)
    findings = await run_in_threadpool(
        warden_of(request).behaviour.list_findings,
        agent=q.get("agent"),
        severity=severity,
        since=float_param(request, "since"),
        after=q.get("after"),
        limit=limit,
    )
    return json_response(
        {
            "findings": [finding_view(f) for f in findings],
            "next": findings[-1].id if len(findings) == limit else None,
        }
    )


@router.get("/v1/agents/{name}/baseline")
async def show_baseline(request: Request, name: str) -> Response:
    await run_in_threadpool(any_operator, request)
    w = warden_of(request)
    agent = await run_in_threadpool(w.agents.get, name)
    return json_response(w.behaviour.view(agent))


@router.put("/v1/agents/{name}/baseline")
async def set_baseline(request: Request, name: str) -> Response:
    op = await run_in_threadpool(operator, request)
    body = await read_object(request)
    w = warden_of(request)
    agent = await run_in_threadpool(w.agents.get, name)
    view = await run_in_threadpool(w.behaviour.set_declared, agent, body, f"operator:{op.name}")
    return json_response(view)
