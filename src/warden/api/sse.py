"""Server-sent events over the audit log: the live views' one push mechanism.

A stream follows the audit log from a cursor with a search filter. It wakes when this process
commits a record (``EventFeed.latest`` moves) and re-reads the store every second anyway, so
records other replicas commit reach it too. Each event's ``id`` is the record's seq: a
reconnecting ``EventSource`` sends it back as ``Last-Event-ID`` and resumes where it left off.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import StreamingResponse

from warden.bootstrap import Warden
from warden.core.governance import AuditQuery
from warden.core.model import AuditRecord

TICK = 0.2  # how often a stream looks at this process's newest committed record
RESCAN = 1.0  # how often it reads the store anyway (records other replicas committed)
KEEPALIVE = 15.0
MAX_BACKLOG = 500


async def start_cursor(request: Request, w: Warden, backlog: int) -> tuple[int, bool]:
    """(seq to follow from, whether the client resumed) for a new stream."""
    resume = request.headers.get("last-event-id", "")
    if resume.isdigit():
        return int(resume), True
    after = request.query_params.get("after")
    if after is not None and after.isdigit():
        return int(after), False
    head, _ = await run_in_threadpool(w.store.audit_head)
    # a window wide enough to hold the backlog in most logs; the stream sends what it finds
    return (max(0, head - backlog * 50) if backlog else head), False


def stream(
    request: Request,
    w: Warden,
    query: AuditQuery,
    cursor: int,
    render: Callable[[AuditRecord], dict[str, Any]],
    *,
    backlog: int = 0,
) -> StreamingResponse:
    async def events() -> AsyncIterator[str]:
        after = cursor
        yield "retry: 2000\n\n"
        if backlog:
            page = await run_in_threadpool(w.attribution.search, query, after=after, limit=1000)
            for rec in page[-backlog:]:
                yield _event(rec, render)
            after = page[-1].seq if page else after
        seen = w.feed.latest
        last_scan = last_sent = time.monotonic()
        while not w.feed.closed and not await request.is_disconnected():
            now = time.monotonic()
            if w.feed.latest != seen or now - last_scan >= RESCAN:
                seen, last_scan = w.feed.latest, now
                page = await run_in_threadpool(w.attribution.search, query, after=after, limit=200)
                for rec in page:
                    yield _event(rec, render)
                    last_sent = now
                if page:
                    after = page[-1].seq
                    continue
            if now - last_sent >= KEEPALIVE:
                yield ": keep-alive\n\n"
                last_sent = now
            await asyncio.sleep(TICK)

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


def _event(rec: AuditRecord, render: Callable[[AuditRecord], dict[str, Any]]) -> str:
    return f"id: {rec.seq}\nevent: record\ndata: {orjson.dumps(render(rec)).decode()}\n\n"
