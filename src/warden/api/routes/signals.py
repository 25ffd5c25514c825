"""Shared Signals (SSF 1.0): metadata, stream management (admin operators), status,
verification, and RFC 8936 poll delivery (the stream's own poll token)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from warden.api.deps import bearer, operator, read_json, warden_of
from warden.api.errors import json_response
from warden.core.model import OperatorRole
from warden.errors import InvalidParameterError

router = APIRouter(tags=["signals"])

LONG_POLL = 10.0  # seconds a poll without ``returnImmediately`` waits for an event
LONG_POLL_STEP = 0.25


def _stream_id(request: Request) -> str | None:
    values = request.query_params.getlist("stream_id")
    if len(values) > 1:
        raise InvalidParameterError("give `stream_id` once")
    return values[0] if values else None


async def _admin(request: Request) -> str:
    op = await run_in_threadpool(operator, request, OperatorRole.ADMIN)
    return f"operator:{op.name}"


def _with_token(view: dict[str, Any], token: str | None) -> dict[str, Any]:
    # Warden extension: the bearer a poll receiver authenticates with, shown this once
    return {**view, "poll_token": token} if token else view


@router.get("/.well-known/ssf-configuration")
async def configuration(request: Request) -> Response:
    return json_response(warden_of(request).signals.configuration())


@router.post("/ssf/streams")
async def create_stream(request: Request) -> Response:
    actor = await _admin(request)
    signals = warden_of(request).signals
    stream, token = await run_in_threadpool(signals.create, await read_json(request), actor)
    return json_response(_with_token(signals.view(stream), token), 201)


@router.get("/ssf/streams")
async def read_streams(request: Request) -> Response:
    await _admin(request)
    signals = warden_of(request).signals
    stream_id = _stream_id(request)
    if stream_id is not None:
        return json_response(signals.view(await run_in_threadpool(signals.get, stream_id)))
    streams = await run_in_threadpool(signals.list)
    return json_response([signals.view(s) for s in streams])


async def _update(request: Request, *, full: bool) -> Response:
    actor = await _admin(request)
    signals = warden_of(request).signals
    body = await read_json(request)
    stream_id = body.get("stream_id") if isinstance(body, dict) else None
    if not isinstance(stream_id, str):
        raise InvalidParameterError("the configuration must name its `stream_id`")
    stream, token = await run_in_threadpool(signals.update, stream_id, body, actor, full=full)
    return json_response(_with_token(signals.view(stream), token))


@router.patch("/ssf/streams")
async def update_stream(request: Request) -> Response:
    return await _update(request, full=False)


@router.put("/ssf/streams")
async def replace_stream(request: Request) -> Response:
    return await _update(request, full=True)


@router.delete("/ssf/streams")
async def delete_stream(request: Request) -> Response:
    actor = await _admin(request)
    stream_id = _stream_id(request)
    if stream_id is None:
        raise InvalidParameterError("give the `stream_id` to delete")
    await run_in_threadpool(warden_of(request).signals.delete, stream_id, actor)
    return Response(status_code=204)


@router.get("/ssf/status")
async def read_status(request: Request) -> Response:
    await _admin(request)
    stream_id = _stream_id(request)
    if stream_id is None:
        raise InvalidParameterError("give the `stream_id`")
    return json_response(await run_in_threadpool(warden_of(request).signals.status, stream_id))


@router.post("/ssf/status")
async def update_status(request: Request) -> Response:
    actor = await _admin(request)
    body = await read_json(request)
    signals = warden_of(request).signals
    return json_response(await run_in_threadpool(signals.set_status, body, actor))


@router.post("/ssf/verify")
async def verify(request: Request) -> Response:
    await _admin(request)
    body = await read_json(request)
    await run_in_threadpool(warden_of(request).signals.verify, body)
    return Response(status_code=204)


@router.post("/ssf/poll/{stream_id}")
async def poll(request: Request, stream_id: str) -> Response:
    signals = warden_of(request).signals
    stream = await run_in_threadpool(signals.authorize_poll, stream_id, bearer(request))
    body = await read_json(request, allow_empty=True)
    answer = await run_in_threadpool(signals.poll, stream, body)
    wait = isinstance(body, dict) and body.get("returnImmediately") is False
    deadline = time.monotonic() + LONG_POLL
    while wait and not answer["sets"] and time.monotonic() < deadline:
        await asyncio.sleep(LONG_POLL_STEP)
        answer = await run_in_threadpool(
            signals.poll, stream, {"maxEvents": body.get("maxEvents", 100)}
        )
    return json_response(answer)
