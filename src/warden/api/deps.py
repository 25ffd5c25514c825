"""Request helpers shared by the routes: JSON bodies, bearer tokens, caller authentication."""

from __future__ import annotations

import hmac
import ssl
from typing import Any
from urllib.parse import parse_qs

import orjson
from starlette.requests import Request

from warden.attestation.base import Channel
from warden.core.model import Operator, OperatorRole
from warden.errors import (
    AuthenticationError,
    MalformedRequestError,
    OAuthError,
    UnsupportedMediaTypeError,
)
from warden.service.container import Warden


def warden_of(request: Request) -> Warden:
    w: Warden = request.app.state.warden
    return w


async def read_json(request: Request, *, allow_empty: bool = False) -> Any:
    ctype = request.headers.get("content-type", "")
    body = await request.body()
    if not body:
        if allow_empty:
            return {}
        raise MalformedRequestError("request body is empty", detail={"field": "body"})
    if ctype.split(";", 1)[0].strip().lower() != "application/json":
        raise UnsupportedMediaTypeError(
            f"content type must be `application/json`, not `{ctype[:80]}`"
        )
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedRequestError(f"request body is not valid json: {exc}") from None


async def read_object(request: Request, *, allow_empty: bool = False) -> dict[str, Any]:
    body = await read_json(request, allow_empty=allow_empty)
    if not isinstance(body, dict):
        raise MalformedRequestError("request body must be a json object")
    return body


async def read_form(request: Request) -> dict[str, list[str]]:
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise OAuthError(
            "invalid_request", "content type must be `application/x-www-form-urlencoded`"
        )
    body = await request.body()
    try:
        return parse_qs(
            body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=100
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise OAuthError("invalid_request", f"malformed form body: {exc}") from None


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def operator(request: Request, *roles: OperatorRole) -> Operator:
    op = warden_of(request).operators.authenticate(bearer(request))
    warden_of(request).operators.require(op, *roles)
    return op


def any_operator(request: Request) -> Operator:
    """Any authenticated operator (admin, approver or auditor) may read."""
    return warden_of(request).operators.authenticate(bearer(request))


def require_pep(request: Request) -> None:
    """PEPs may call the PDP unauthenticated only when Warden is bound to loopback."""
    w = warden_of(request)
    if w.settings.loopback and not w.settings.pep_api_keys:
        return
    token = bearer(request) or request.headers.get("x-api-key")
    if token:
        for key in w.settings.pep_api_keys:
            if hmac.compare_digest(token.encode(), key.encode()):
                return
        try:
            w.operators.authenticate(token)
            return
        except AuthenticationError:
            pass
    raise AuthenticationError(
        "policy enforcement points must authenticate (api key or operator token)"
    )


def channel_of(request: Request) -> Channel:
    """What the transport proved: the verified TLS client chain from the ASGI ``tls`` extension.

    ``warden serve`` puts it there (``api/tls.py``); the certificates are PEM per the ASGI TLS
    extension. Without TLS, or without a client certificate, the channel is empty.
    """
    tls = (request.scope.get("extensions") or {}).get("tls") or {}
    chain = tls.get("client_cert_chain") or []
    ders: list[bytes] = []
    for pem in chain:
        if isinstance(pem, str):
            ders.append(pem_to_der(pem))
    return Channel(tls_client_chain=tuple(ders))


def pem_to_der(pem: str) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem)
