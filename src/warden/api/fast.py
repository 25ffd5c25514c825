"""The AuthZEN evaluation route straight from ASGI (ADR 0143).

``POST /access/v1/evaluation`` is what PEPs call on every tool call; everything else is rare.
This pure-ASGI layer answers that one route itself — the same functions the FastAPI route calls
(``require_pep``, ``read_json``, ``parse_evaluation``, ``decide``, ``render`` for errors) — and
hands every other request to the FastAPI app. It skips only FastAPI's per-request machinery:
the route table scan, the endpoint wrapper and its exception middleware. It sits inside
``RequestContextMiddleware`` (request id, body limit) and ``TraceMiddleware``, so those apply.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from warden.api.deps import read_json, require_pep
from warden.api.errors import json_response, render
from warden.api.observed import decide
from warden.api.refused import note_refusal
from warden.authz.authzen import parse_evaluation
from warden.errors import AccessDeniedError, MalformedRequestError

__all__ = ["EVALUATION_PATH", "EvaluationRoute"]

EVALUATION_PATH = "/access/v1/evaluation"


class EvaluationRoute:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != EVALUATION_PATH
            or scope["method"] != "POST"
            or scope.get("root_path")  # mounted under a prefix: let the router work it out
        ):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        starlette_app: Any = scope["app"]
        state = starlette_app.state
        w = state.warden
        rid: str | None = scope.get("warden.request_id")
        try:
            require_pep(request)
            body = await read_json(request)
            if not isinstance(body, dict):
                raise MalformedRequestError("request body must be a json object")
            ev = parse_evaluation(body)
            with w.auditor.deferred() as tickets:  # decided on the loop, the commit awaited
                out = decide(w, state.metrics, ev, rid, "evaluation")
            await w.writer.wait_async(tickets)  # answered only once recorded (ADR 0090)
            response = json_response({"decision": out.allowed, "context": out.context})
        except ClientDisconnect:  # the client left (or its body timed out): nobody reads this
            response = Response(status_code=400)
        except Exception as exc:  # the same answers as the app's exception handlers
            response = render(exc, rid)
            if response.status_code in (401, 403) and not isinstance(exc, AccessDeniedError):
                note_refusal(w, request, exc, response.status_code)
        await response(scope, receive, send)
