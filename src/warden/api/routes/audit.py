"""Audit log: /v1/audit (page through), /v1/audit/verify (check the hash chain)."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from warden.api.deps import operator, warden_of
from warden.api.errors import json_response
from warden.api.paging import float_param, int_param, limit_of
from warden.core.audit import verify_chain
from warden.core.model import OperatorRole

router = APIRouter(prefix="/v1/audit", tags=["audit"])


@router.get("")
async def list_audit(request: Request) -> Response:
    await run_in_threadpool(operator, request, OperatorRole.AUDITOR)
    q = request.query_params
    limit = limit_of(request)
    records = await run_in_threadpool(
        warden_of(request).store.list_audit,
        after_seq=int_param(request, "after"),
        limit=limit,
        type_prefix=q.get("type"),
        agent=q.get("agent"),
        task_id=q.get("task"),
        since=float_param(request, "since"),
        until=float_param(request, "until"),
    )
    return json_response(
        {
            "records": [asdict(r) for r in records],
            "next": records[-1].seq if len(records) == limit else None,
        }
    )


@router.get("/verify")
async def verify(request: Request) -> Response:
    await run_in_threadpool(operator, request, OperatorRole.AUDITOR)
    w = warden_of(request)
    await run_in_threadpool(w.writer.flush)
    result = await run_in_threadpool(lambda: verify_chain(w.store.iter_audit()))
    return json_response(asdict(result))
