"""The single mapping from Warden error codes to HTTP, and the error body (ErrorV1).

Body: ``{"error": {"code", "message", "details"}, "request_id"}``. OAuth endpoints render RFC 6749
§5.2 bodies instead (``OAuthError``). Credential failures are collapsed to ``token_invalid``.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from warden.errors import (
    DPoPProofError,
    OAuthError,
    TokenInvalidError,
    WardenError,
    is_database_failure,
)
from warden.tokens.dpop import PROOF_ALGORITHMS

DPOP_ALGS = " ".join(PROOF_ALGORITHMS)

log = logging.getLogger("warden.api")

STATUS_BY_CODE = {
    "invalid_parameter": 400,
    "malformed_request": 400,
    "unsupported_media_type": 400,
    "not_found": 404,
    "conflict": 409,
    "approval_closed": 409,
    "approval_digest_mismatch": 409,
    "approval_not_permitted": 403,
    "agent_cannot_approve": 403,
    "csrf_failed": 403,
    "rate_limited": 429,
    "unauthenticated": 401,
    "forbidden": 403,
    "payload_too_large": 413,
    "token_invalid": 401,
    "attestation_failed": 401,
    "policy_invalid": 422,
    "authz_evaluation_error": 500,
    "storage_error": 503,
    "database_unavailable": 503,
    "counters_unavailable": 503,
    "audit_unavailable": 503,
    "lease_target_unknown": 400,
    "reserved_entity_type": 400,
    "tool_mismatch": 403,
    "task_not_active": 409,
    "invalid_dpop_proof": 401,
    "lease_failed": 502,
    "key_seal_failed": 500,
    "export_failed": 502,
    "envelope_invalid": 400,
    "manifest_mismatch": 403,
    "tool_definition_changed": 409,
}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


def error_body(
    code: str, message: str, request_id: str | None, details: Any = None
) -> dict[str, Any]:
    return {
        "error": {"code": code, "message": message, "details": details or {}},
        "request_id": request_id,
    }


def render(exc: Exception, request_id: str | None) -> Response:
    if isinstance(exc, OAuthError):
        headers: dict[str, str] = {"Cache-Control": "no-store"}
        if exc.status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="warden"'
        return json_response(
            {"error": exc.error, "error_description": exc.message}, exc.status, headers
        )
    if isinstance(exc, TokenInvalidError):
        # opaque to callers; the precise subclass was already recorded by the service
        return json_response(
            error_body("token_invalid", "the credential is not valid", request_id),
            401,
            {"WWW-Authenticate": 'Bearer realm="warden", error="invalid_token"'},
        )
    if isinstance(exc, DPoPProofError):
        # RFC 9449 §7.1: the challenge names the DPoP scheme and the accepted algorithms
        return json_response(
            error_body(exc.code, exc.message, request_id),
            401,
            {"WWW-Authenticate": f'DPoP error="invalid_dpop_proof", algs="{DPOP_ALGS}"'},
        )
    if isinstance(exc, WardenError):
        status = STATUS_BY_CODE.get(exc.code, 500)
        auth = {"WWW-Authenticate": 'Bearer realm="warden"'} if status == 401 else None
        message = exc.message if status < 500 else "the server could not complete the request"
        if status >= 500:
            log.error("request failed: %s: %s", exc.code, exc.message)
        details = exc.detail if status < 500 else None
        return json_response(error_body(exc.code, message, request_id, details), status, auth)
    if is_database_failure(exc):
        # a driver or disk error that escaped the store's own mapping: still a 503 (issue 11)
        log.error("request failed: database_unavailable: %s: %s", type(exc).__name__, exc)
        return json_response(
            error_body(
                "database_unavailable", "the server could not complete the request", request_id
            ),
            503,
        )
    # anything else fails closed too: nothing was allowed, the caller gets a stable code
    log.exception("unhandled error", exc_info=exc)
    return json_response(
        error_body("internal_error", "the server could not complete the request", request_id), 500
    )


def request_id_of(request: Request) -> str | None:
    rid: str | None = request.scope.get("warden.request_id")
    return rid
