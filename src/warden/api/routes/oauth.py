"""OAuth 2.0 endpoints: metadata (RFC 8414), JWKS, token exchange (RFC 8693)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from warden.api.deps import channel_of, read_form, warden_of
from warden.api.errors import json_response
from warden.service.tasks import ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE

router = APIRouter(tags=["oauth"])


@router.get("/.well-known/oauth-authorization-server")
async def metadata(request: Request) -> Response:
    w = warden_of(request)
    base = w.settings.effective_issuer
    return json_response(
        {
            "issuer": base,
            "token_endpoint": f"{base}/oauth2/token",
            "jwks_uri": f"{base}/.well-known/jwks.json",
            "grant_types_supported": [TOKEN_EXCHANGE],
            "token_endpoint_auth_methods_supported": ["none"],
            "subject_token_types_supported": sorted({*w.attestors.token_types, ACCESS_TOKEN_TYPE}),
            "authorization_details_types_supported": ["agent_task"],
            "scopes_supported": [],
            "response_types_supported": [],
        }
    )


@router.get("/.well-known/jwks.json")
async def jwks(request: Request) -> Response:
    return json_response(
        warden_of(request).keys.jwks(), headers={"Cache-Control": "public, max-age=60"}
    )


@router.get("/.well-known/spiffe-bundle")
async def spiffe_bundle(request: Request) -> Response:
    """The SPIFFE bundle of Warden's own trust domain (the SVIDs of its workload socket)."""
    return json_response(
        warden_of(request).workload.trust_domain.bundle(),
        headers={"Cache-Control": "public, max-age=60"},
    )


@router.post("/oauth2/token")
async def token(request: Request) -> Response:
    metrics = request.app.state.metrics
    try:
        form = await read_form(request)
        body = await run_in_threadpool(warden_of(request).tasks.token, form, channel_of(request))
    except Exception:
        metrics.tokens.labels(outcome="refused").inc()
        raise
    metrics.tokens.labels(outcome="issued").inc()
    return json_response(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})
