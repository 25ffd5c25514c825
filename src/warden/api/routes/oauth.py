"""OAuth 2.0 endpoints: metadata (RFC 8414), JWKS, token exchange (RFC 8693) with DPoP binding
(RFC 9449), introspection (RFC 7662) and revocation (RFC 7009)."""

from __future__ import annotations

import time

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from warden.api.deps import channel_of, read_form, require_client, warden_of
from warden.api.errors import json_response
from warden.api.oauth_requests import (
    ACCESS_TOKEN_TYPE,
    TOKEN_EXCHANGE,
    exchange,
    grant_label,
    token_param,
)
from warden.core.model import OperatorRole
from warden.errors import OAuthError
from warden.service.outage import OUTAGE_ERRORS
from warden.tokens.dpop import PROOF_ALGORITHMS

router = APIRouter(tags=["oauth"])

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@router.get("/.well-known/oauth-authorization-server")
async def metadata(request: Request) -> Response:
    w = warden_of(request)
    base = w.settings.effective_issuer
    return json_response(
        {
            "issuer": base,
            "token_endpoint": f"{base}/oauth2/token",
            "introspection_endpoint": f"{base}/oauth2/introspect",
            "revocation_endpoint": f"{base}/oauth2/revoke",
            "jwks_uri": f"{base}/.well-known/jwks.json",
            "grant_types_supported": [TOKEN_EXCHANGE],
            "token_endpoint_auth_methods_supported": ["none"],
            # PEPs and resource servers: a PEP API key or an operator token as a bearer token
            "introspection_endpoint_auth_methods_supported": ["bearer"],
            "revocation_endpoint_auth_methods_supported": ["bearer"],
            "subject_token_types_supported": sorted({*w.attestors.token_types, ACCESS_TOKEN_TYPE}),
            "actor_token_types_supported": [ACCESS_TOKEN_TYPE],
            "authorization_details_types_supported": ["agent_task"],
            "dpop_signing_alg_values_supported": list(PROOF_ALGORITHMS),
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
    w = warden_of(request)
    started = time.perf_counter()
    grant = "unknown"
    try:
        form = await read_form(request)
        grant = grant_label(form)
        proofs = request.headers.getlist("dpop")
        if len(proofs) > 1:
            raise OAuthError("invalid_dpop_proof", "send exactly one DPoP header")
        with w.tracing.span("warden.token", {"warden.grant": grant}) as span:
            body = await run_in_threadpool(
                exchange,
                w.tasks,
                w.credentials,
                form,
                channel_of(request),
                dpop=proofs[0] if proofs else None,
            )
            if span is not None:
                span.set_attribute("warden.task", str(body.get("task_id", "")))
    except Exception:
        metrics.tokens.labels(outcome="refused").inc()
        metrics.token_seconds.labels(grant, "refused").observe(time.perf_counter() - started)
        raise
    metrics.tokens.labels(outcome="issued").inc()
    metrics.token_seconds.labels(grant, "issued").observe(time.perf_counter() - started)
    return json_response(body, headers=NO_STORE)


@router.post("/oauth2/introspect")
async def introspect(request: Request) -> Response:
    caller = await run_in_threadpool(require_client, request)
    token = token_param(await read_form(request))
    body = await run_in_threadpool(
        warden_of(request).introspection.introspect, token, caller=caller
    )
    return json_response(body, headers=NO_STORE)


@router.post("/oauth2/revoke")
async def revoke(request: Request) -> Response:
    # revoking is an act, not a look: operators must be admins (PEP keys may revoke)
    caller = await run_in_threadpool(require_client, request, OperatorRole.ADMIN)
    token = token_param(await read_form(request))
    w = warden_of(request)
    try:
        await run_in_threadpool(w.introspection.revoke, token, caller=caller)
    except OUTAGE_ERRORS as exc:  # the database is down: in force here, journaled (ADR 0093)
        pending = await run_in_threadpool(w.outage.revoke_token, token, actor=caller, error=exc)
        return json_response(pending, 202, headers=NO_STORE)
    return Response(status_code=200, headers=NO_STORE)
