"""The workload API app, served only on the Unix socket (``warden serve --workload-socket``).

    POST /v1/jwt-svid   {"audience": "warden"}   (body optional)
        200 {"spiffe_id", "svid", "expires_at", "audience", "agent", "entry"}
        403 {"error": {"code": "attestation_failed", "message", "details": {"reason"}}}
    GET  /v1/bundle     the SPIFFE bundle of Warden's own trust domain

The caller is whoever the kernel says connected (``PeerCredentials`` from the socket); there
is nothing to authenticate with. Over any other transport the peer is missing and every
request is refused.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from warden.api.deps import read_object
from warden.api.errors import error_body, json_response, request_id_of
from warden.api.middleware import RequestContextMiddleware
from warden.api.transport import PEER_EXTENSION
from warden.attestation.unix import PeerCredentials
from warden.bootstrap import Warden
from warden.errors import AttestationError, WardenError


def create_workload_app(w: Warden) -> FastAPI:
    app = FastAPI(title="Warden workload API", docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/v1/jwt-svid")
    async def jwt_svid(request: Request) -> Response:
        peer = (request.scope.get("extensions") or {}).get(PEER_EXTENSION)
        if not isinstance(peer, PeerCredentials):
            return json_response(
                error_body("forbidden", "only the workload socket serves this", None), 403
            )
        body = await read_object(request, allow_empty=True)
        try:
            result = await run_in_threadpool(w.workload.issue_svid, peer, body.get("audience"))
        except AttestationError as exc:
            reason = exc.detail.get("reason", exc.code)
            return json_response(
                error_body(exc.code, exc.message, request_id_of(request), {"reason": reason}),
                403,
            )
        return json_response(result, headers={"Cache-Control": "no-store"})

    @app.get("/v1/bundle")
    async def bundle(request: Request) -> Response:
        return json_response(w.workload.trust_domain.bundle())

    async def on_error(request: Request, exc: Exception) -> Response:
        from warden.api.errors import render

        return render(exc, request_id_of(request))

    app.add_exception_handler(WardenError, on_error)
    app.add_exception_handler(Exception, on_error)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=16 * 1024)
    return app
