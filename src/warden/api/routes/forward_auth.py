"""Forward-auth: ``GET|POST /v1/forward-auth`` for nginx ``auth_request``, Envoy ext_authz (HTTP)
and Traefik ``forwardAuth``.

The proxy in front of an API asks here before passing a request on. The original request is
read from the headers each proxy sends:

=================  ==================================  ======================================
proxy              method                              URI
=================  ==================================  ======================================
nginx              ``X-Original-Method``               ``X-Original-URI``
Traefik            ``X-Forwarded-Method``              ``X-Forwarded-Uri``
Envoy ext_authz    the check request's own method      the path after ``/v1/forward-auth``
=================  ==================================  ======================================

``X-Forwarded-Host`` / ``X-Forwarded-Proto`` (or ``Host``) complete the URL. Two sources that
disagree, a header given twice, or no source at all is a ``400``: the endpoint never guesses.

The path is canonicalised once before any policy sees it (``warden.core.paths``, ADR 0082):
dot segments removed, unreserved escapes decoded; an encoded ``/`` or ``\\``, NUL, ``;``
parameters, ``//`` and the like are a ``400`` (``invalid_parameter``, reason
``unsafe_path``). Policies see the canonical path; ``context.http.raw_path`` and the audit
record keep what was sent.

The agent's credential comes in ``Authorization: Bearer|DPoP <task credential>`` (with the
``DPoP`` proof header for bound credentials). The decision is Warden's agent mode with the HTTP
method as the action and the route as the resource, ``Route::"<path>"`` (attributes ``path``
and ``host``); ``context.http`` holds ``method``, ``uri``, ``path`` and ``host``. Answers:
``200`` with ``X-Warden-Agent``, ``X-Warden-Task`` and ``X-Warden-Decision`` for the upstream;
``401`` (no or invalid credential, with ``WWW-Authenticate``); ``403`` (denied); every answer
carries ``X-Warden-Decision`` when a decision was made.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from warden.api.deps import require_pep, warden_of
from warden.api.errors import error_body, json_response, request_id_of
from warden.api.observed import decide
from warden.authz.authzen import ActionInput, EntityInput, EvaluationInput
from warden.core.paths import CanonicalPath, canonical_path
from warden.core.reasons import deny_reason
from warden.errors import InvalidParameterError, TokenInvalidError

router = APIRouter(tags=["enforcement"])

PREFIX = "/v1/forward-auth"
ROUTE_TYPE = "Route"
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
_CREDENTIAL_REASONS = {"invalid_credential", "missing_credential", "invalid_dpop_proof"}


def _one_header(request: Request, name: str) -> str | None:
    values = request.headers.getlist(name)
    if len(values) > 1:
        raise InvalidParameterError(f"header `{name}` is given more than once")
    return values[0].strip() if values else None


def _agreed(sources: dict[str, str | None], what: str) -> str | None:
    given = {k: v for k, v in sources.items() if v}
    if len(set(given.values())) > 1:
        names = ", ".join(f"`{k}`" for k in given)
        raise InvalidParameterError(f"conflicting {what} in {names}")
    return next(iter(given.values()), None)


def _envoy_target(request: Request, suffix: str) -> str | None:
    """The raw target after ``/v1/forward-auth`` (Envoy's path-suffix form), as sent: Starlette's
    routing path is already percent-decoded, so it cannot be canonicalised honestly."""
    if not suffix:
        return None
    raw = request.scope.get("raw_path")
    text = raw.decode("latin-1") if isinstance(raw, bytes) else f"{PREFIX}/{suffix}"
    if not text.startswith(PREFIX + "/"):
        raise InvalidParameterError(
            "the request path is refused: an encoded separator",
            detail={"field": "path", "reason": "unsafe_path"},
        )
    target = text[len(PREFIX) :]
    query = request.scope.get("query_string") or b""
    if query:
        target += "?" + query.decode("latin-1")
    return target


def original_request(request: Request, suffix: str) -> tuple[str, str, CanonicalPath, str]:
    """``(method, absolute uri, canonical path, host)`` of the request the proxy asks about.

    The path is canonicalised once, here, before any policy sees it (``core.paths``); a path
    with no single reading is a 400, never a decision."""
    envoy_path = _envoy_target(request, suffix)
    uri = _agreed(
        {
            "X-Original-URI": _one_header(request, "x-original-uri"),
            "X-Forwarded-Uri": _one_header(request, "x-forwarded-uri"),
            "path": envoy_path,
        },
        "original URIs",
    )
    if uri is None:
        raise InvalidParameterError(
            "the original request is unknown: send `X-Original-URI` (nginx) or "
            "`X-Forwarded-Uri` (Traefik), or append the path (Envoy)"
        )
    method = _agreed(
        {
            "X-Original-Method": _one_header(request, "x-original-method"),
            "X-Forwarded-Method": _one_header(request, "x-forwarded-method"),
        },
        "original methods",
    )
    if method is None:
        if envoy_path is None:
            raise InvalidParameterError(
                "the original method is unknown: send `X-Original-Method` or `X-Forwarded-Method`"
            )
        method = request.method
    method = method.upper()
    if method not in _METHODS:
        raise InvalidParameterError(f"unsupported method `{method[:20]}`")
    path = canonical_path(uri)
    host = _one_header(request, "x-forwarded-host") or request.headers.get("host", "")
    proto = (_one_header(request, "x-forwarded-proto") or "http").lower()
    if (
        proto not in ("http", "https")
        or not host
        or len(host) > 255
        or any(c in host for c in "/\\@?#%")
        or any(ord(c) < 0x21 or ord(c) > 0x7E for c in host)
    ):
        raise InvalidParameterError("the original host or scheme is invalid")
    return method, f"{proto}://{host}{uri}", path, host


def _credential(request: Request) -> tuple[str | None, str | None]:
    header = _one_header(request, "authorization")
    proof = _one_header(request, "dpop")
    if not header:
        return None, proof
    scheme, _, token = header.partition(" ")
    if scheme.lower() not in ("bearer", "dpop") or not token.strip():
        return None, proof
    return token.strip(), proof


def _challenge(reason: str, decision_id: str | None, rid: str | None) -> Response:
    headers = {"WWW-Authenticate": 'Bearer realm="warden", error="invalid_token"'}
    if decision_id:
        headers["X-Warden-Decision"] = decision_id
    return json_response(
        error_body("unauthenticated", f"the credential was refused: {reason}", rid), 401, headers
    )


async def forward_auth(request: Request, suffix: str = "") -> Response:
    """The check, timed (the latency forward-auth adds) and, tracing on, in its own span."""
    w = warden_of(request)
    started = time.perf_counter()
    if w.tracing.enabled:
        with w.tracing.span("warden.forward_auth") as span:
            response = await _forward_auth(request, suffix)
            span.set_attribute("http.response.status_code", response.status_code)
    else:
        response = await _forward_auth(request, suffix)
    request.app.state.metrics.forward_auth_seconds.labels(str(response.status_code)).observe(
        time.perf_counter() - started
    )
    return response


async def _forward_auth(request: Request, suffix: str) -> Response:
    require_pep(request)
    w = warden_of(request)
    rid = request_id_of(request)
    method, uri, canonical, host = original_request(request, suffix)
    path = canonical.path
    token, proof = _credential(request)
    if token is None:
        return _challenge("missing_credential", None, rid)
    subject = ""
    try:
        subject = w.verifier.peek_unverified(token).get("sub") or ""
    except TokenInvalidError:
        pass
    properties: dict[str, Any] = {"token": token}
    if proof is not None:
        properties["dpop"] = proof
    ev = EvaluationInput(
        subject=EntityInput("agent", str(subject), properties),
        action=ActionInput(method),
        resource=EntityInput(ROUTE_TYPE, path, {"path": path, "host": host}),
        context={
            "http": {
                "method": method,
                "uri": uri,
                "path": path,
                "host": host,
                "raw_path": canonical.raw.partition("?")[0],
            }
        },
    )
    metrics = request.app.state.metrics
    out = await run_in_threadpool(decide, w, metrics, ev, rid, "forward_auth")
    reason = deny_reason(out.context)
    if not out.allowed and reason in _CREDENTIAL_REASONS:
        return _challenge(reason, out.decision_id, rid)
    if not out.allowed:
        body = error_body(
            "access_denied",
            f"`{method} {path}` is denied",
            rid,
            {
                "decision_id": out.decision_id,
                "reason": reason,
                "policies": out.context.get("reasons", []),
            },
        )
        return json_response(body, 403, {"X-Warden-Decision": out.decision_id})
    cred = w.credentials.verify_signature(token)  # verified by the decision just now (cached)
    return Response(
        status_code=200,
        headers={
            "X-Warden-Agent": cred.subject,
            "X-Warden-Task": cred.task_id,
            "X-Warden-Decision": out.decision_id,
        },
    )


for _method in ("GET", "POST"):  # one route each: distinct OpenAPI operation ids
    router.add_api_route(
        PREFIX, forward_auth, methods=[_method], name=f"forward_auth_{_method.lower()}"
    )
router.add_api_route(
    PREFIX + "/{suffix:path}",
    forward_auth,
    methods=sorted(_METHODS),
    include_in_schema=False,
)
