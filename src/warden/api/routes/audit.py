"""Audit log: /v1/audit (attribution search), /v1/audit/verify (chain and signed checkpoints),
/v1/audit/tasks/{id}/story, /v1/audit/checkpoints, /v1/audit/export (OCSF or JSON lines)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from warden.api.deps import operator, warden_of
from warden.api.errors import json_response
from warden.api.paging import float_param, int_param, limit_of
from warden.core.model import OperatorRole
from warden.service.attribution import query_from
from warden.service.checkpoints import verify_log
from warden.service.export import encoder

router = APIRouter(prefix="/v1/audit", tags=["audit"])

SEARCH_PARAMS = (
    "type",
    "agent",
    "owner",
    "task",
    "subtree",
    "on_behalf_of",
    "tool",
    "decision",
    "policy",
)
EXPORT_PAGE = 1000


@router.get("")
async def list_audit(request: Request) -> Response:
    await run_in_threadpool(operator, request, OperatorRole.AUDITOR)
    q = request.query_params
    limit = limit_of(request)
    params: dict[str, Any] = {k: q.get(k) for k in SEARCH_PARAMS}
    params["since"] = float_param(request, "since")
    params["until"] = float_param(request, "until")
    query = query_from(params)
    records = await run_in_threadpool(
        warden_of(request).attribution.search,
        query,
        after=int_param(request, "after"),
        limit=limit,
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

    def run() -> dict[str, Any]:
        checkpoints = list(w.store.iter_checkpoints())
        return verify_log(w.store.iter_audit(), checkpoints, w.evidence_jwks()).as_dict()

    return json_response(await run_in_threadpool(run))


@router.get("/tasks/{task_id}/story")
async def story(request: Request, task_id: str) -> Response:
    await run_in_threadpool(operator, request, OperatorRole.AUDITOR)
    w = warden_of(request)
    await run_in_threadpool(w.writer.flush)
    return json_response(await run_in_threadpool(w.attribution.story, task_id))


@router.get("/checkpoints")
async def checkpoints(request: Request) -> Response:
    await run_in_threadpool(operator, request, OperatorRole.AUDITOR)
    found = await run_in_threadpool(
        warden_of(request).store.list_checkpoints,
        after_seq=int_param(request, "after"),
        limit=limit_of(request),
    )
    return json_response({"checkpoints": [asdict(c) for c in found]})


@router.post("/checkpoints")
async def checkpoint_now(request: Request) -> Response:
    await run_in_threadpool(operator, request)
    w = warden_of(request)
    created = await run_in_threadpool(w.checkpoints.tick)
    latest = created or await run_in_threadpool(w.store.latest_checkpoint)
    body = {"created": created is not None, "checkpoint": asdict(latest) if latest else None}
    return json_response(body, 201 if created else 200)


@router.get("/export")
async def export(request: Request) -> Response:
    """Stream records after ``after`` (to ``until_seq``) as NDJSON: OCSF events or raw records."""
    await run_in_threadpool(operator, request, OperatorRole.AUDITOR)
    w = warden_of(request)
    encode = encoder(request.query_params.get("format", "ocsf"))
    start = int_param(request, "after")
    stop = int_param(request, "until_seq", 0) or None
    await run_in_threadpool(w.writer.flush)

    def lines() -> Iterator[str]:
        after = start
        while True:
            page = w.store.list_audit(after_seq=after, limit=EXPORT_PAGE)
            for rec in page:
                if stop is not None and rec.seq > stop:
                    return
                yield encode(rec) + "\n"
            if len(page) < EXPORT_PAGE:
                return
            after = page[-1].seq

    return StreamingResponse(iterate_in_threadpool(lines()), media_type="application/x-ndjson")
