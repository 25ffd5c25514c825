"""create_app(): the ASGI application over a Warden instance. No import-time globals."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

import warden
from warden.api.audit_gate import AuditGate
from warden.api.errors import render, request_id_of
from warden.api.fast import EvaluationRoute
from warden.api.metrics import Metrics
from warden.api.middleware import RequestContextMiddleware, TraceMiddleware
from warden.api.openapi import openapi_schema
from warden.api.refused import note_refusal
from warden.api.routes import (
    agents,
    approvals,
    audit,
    authzen,
    behaviour,
    console,
    docs,
    forward_auth,
    governance,
    health,
    keys,
    mcp,
    oauth,
    operators,
    policies,
    replicas,
    signals,
    tasks,
)
from warden.bootstrap import Warden
from warden.errors import AccessDeniedError, WardenError


def create_app(w: Warden, *, manage_lifecycle: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if manage_lifecycle:
            w.start()
        try:
            yield
        finally:
            if manage_lifecycle:
                w.close()

    app = FastAPI(
        title="Warden",
        version=warden.__version__,
        description="Runtime identity and authorization control plane for autonomous AI agents",
        lifespan=lifespan,
        docs_url=None,  # served offline by routes/docs.py
        redoc_url=None,
    )
    app.state.warden = w
    app.openapi = lambda: openapi_schema(app)  # type: ignore[method-assign]  # documented hook
    app.state.metrics = Metrics()
    app.state.metrics.bind(w)

    async def on_error(request: Request, exc: Exception) -> Response:
        response = render(exc, request_id_of(request))
        if response.status_code in (401, 403) and not isinstance(exc, AccessDeniedError):
            note_refusal(w, request, exc, response.status_code)
        return response

    async def on_disconnect(request: Request, exc: Exception) -> Response:
        # the client left (or its body timed out, ADR 0095): nobody reads this answer
        return Response(status_code=400)

    app.add_exception_handler(WardenError, on_error)
    app.add_exception_handler(ClientDisconnect, on_disconnect)
    app.add_exception_handler(Exception, on_error)
    routers = (health, oauth, authzen, agents, tasks, audit, policies, forward_auth, keys)
    modules = (replicas, governance, approvals, behaviour, operators, mcp, signals, console, docs)
    for module in (*routers, *modules):
        app.include_router(module.router)
    app.add_middleware(EvaluationRoute)  # the PEP's hot route without FastAPI's machinery
    if w.tracing.enabled:  # off, not even a pass-through layer: tracing costs nothing
        app.add_middleware(TraceMiddleware, tracing=w.tracing)
    app.add_middleware(AuditGate, writer=w.writer)  # innermost: after the request id
    app.add_middleware(RequestContextMiddleware, max_body_bytes=w.settings.max_body_bytes)
    return app
