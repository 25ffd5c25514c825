"""Refuse every change while audit records cannot be made durable (ADR 0090).

A use case writes its rows and then its audit record; if the record then fails, the change is
already made but unrecorded. So while the writer is unavailable, a request that may change state
(any method but GET/HEAD/OPTIONS) is refused up front with 503 ``audit_unavailable`` before it
reaches a use case. Reads keep working, so operators can look at what is going on.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from warden.api.errors import error_body, json_response
from warden.audit.writer import AuditWriter

_READS = frozenset({"GET", "HEAD", "OPTIONS"})


class AuditGate:
    def __init__(self, app: ASGIApp, *, writer: AuditWriter) -> None:
        self.app = app
        self.writer = writer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in _READS or self.writer.available:
            await self.app(scope, receive, send)
            return
        body = error_body(
            "audit_unavailable",
            "audit records cannot be written at the moment: the request is refused",
            scope.get("warden.request_id"),
        )
        await json_response(body, 503, {"Retry-After": "1"})(scope, receive, send)
