"""Pure-ASGI middleware (cheap on the hot path): request ids, body-size limits, and (only when
tracing is on) a server span per request that continues the caller's W3C ``traceparent``."""

from __future__ import annotations

import secrets
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from warden.telemetry import Tracing

MAX_REQUEST_ID = 128


class RequestContextMiddleware:
    """Echo ``X-Request-ID`` (AuthZEN §12) or mint one; refuse oversized bodies early (413)."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = None
        length = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                rid = value.decode("latin-1")[:MAX_REQUEST_ID]
            elif name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    length = -1
        rid = rid or secrets.token_hex(8)
        scope["warden.request_id"] = rid
        rid_header = (b"x-request-id", rid.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], rid_header]
            await send(message)

        if length is not None and (length < 0 or length > self.max_body):
            await _too_large(send_with_id, rid, self.max_body)
            return

        received = 0
        max_body = self.max_body

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_body:
                    raise _BodyTooLargeError
            return message

        try:
            await self.app(scope, limited_receive, send_with_id)
        except _BodyTooLargeError:
            await _too_large(send_with_id, rid, self.max_body)


class TraceMiddleware:
    """One SERVER span per HTTP request, a child of the PEP's ``traceparent`` when it sends one;
    the response carries ``traceparent`` back so a caller can find the trace."""

    def __init__(self, app: ASGIApp, *, tracing: Tracing) -> None:
        self.app = app
        self.tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        parent = None
        for name, value in scope["headers"]:
            if name == b"traceparent":
                parent = value.decode("latin-1")[:128]
                break
        method = scope.get("method", "")
        attributes = {"http.request.method": method, "url.path": scope.get("path", "")[:512]}
        with self.tracing.span(
            method,  # OTel semconv: no route template this early; the path is an attribute
            attributes,
            traceparent=parent,
            kind="server",
        ) as span:
            header = self.tracing.traceparent()

            async def send_traced(message: Message) -> None:
                if message["type"] == "http.response.start":
                    span.set_attribute("http.response.status_code", message["status"])
                    if header:
                        message["headers"] = [
                            *message.get("headers", []),
                            (b"traceparent", header.encode("latin-1")),
                        ]
                await send(message)

            await self.app(scope, receive, send_traced)


class _BodyTooLargeError(Exception):
    pass


async def _too_large(send: Any, rid: str, limit: int) -> None:
    body = orjson.dumps(
        {
            "error": {
                "code": "payload_too_large",
                "message": f"request body is larger than {limit} bytes",
                "details": {},
            },
            "request_id": rid,
        }
    )
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
