"""Signing keys: /v1/keys (list: any operator; rotate: admin)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from warden.api.deps import any_operator, operator, warden_of
from warden.api.errors import json_response
from warden.core.model import OperatorRole

router = APIRouter(prefix="/v1/keys", tags=["keys"])


@router.get("")
async def list_keys(request: Request) -> Response:
    await run_in_threadpool(any_operator, request)
    keys = await run_in_threadpool(warden_of(request).key_service.view)
    return json_response({"keys": keys})


@router.post("/rotate")
async def rotate(request: Request) -> Response:
    op = await run_in_threadpool(operator, request, OperatorRole.ADMIN)
    w = warden_of(request)
    record = await run_in_threadpool(w.key_service.rotate, f"operator:{op.name}")
    keys = await run_in_threadpool(w.key_service.view)
    return json_response({"current": record.kid, "keys": keys})
