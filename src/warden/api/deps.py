"""Request helpers shared by the routes: JSON bodies, bearer tokens, caller authentication."""

from __future__ import annotations

import hmac
import ssl
from typing import Any
from urllib.parse import parse_qs

import orjson
from starlette.requests import Request

from warden.attestation.base import Channel
from warden.bootstrap import Warden
from warden.core.model import Operator, OperatorRole
from warden.errors import (
    AuthenticationError,
    CSRFError,
    DPoPProofError,
    MalformedRequestError,
    OAuthError,
    PermissionDeniedError,
    UnsupportedMediaTypeError,
)


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


def authorization(request: Request) -> tuple[str, str] | None:
    """(scheme in lower case, credentials) of the Authorization header, if any."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if not value.strip():
        return None
    return scheme.lower(), value.strip()


def dpop_header(request: Request) -> str | None:
    """The one ``DPoP`` header (RFC 9449 §4.3: more than one is an invalid proof)."""
    values = request.headers.getlist("dpop")
    if len(values) > 1:
        raise DPoPProofError("send exactly one DPoP header", detail={"reason": "malformed"})
    return values[0] if values else None


def request_uri(request: Request) -> str:
    """The URI the client called, as the issuer names this server (for DPoP ``htu``)."""
    base = warden_of(request).settings.effective_issuer.rstrip("/")
    return f"{base}{request.url.path}"


# The console's session (docs/adr/0100): the operator token in an HttpOnly SameSite=Strict
# cookie, and a double-submit CSRF token every state-changing request must echo in a header.
SESSION_COOKIE = "warden_console"
CSRF_COOKIE = "warden_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def same_origin(request: Request) -> bool:
    """True when the browser's ``Origin`` (or, lacking it, ``Referer``) is this server."""
    claimed = request.headers.get("origin") or request.headers.get("referer")
    if not claimed:
        return False
    host = request.headers.get("host", "")
    scheme = request.url.scheme
    own = f"{scheme}://{host}"
    return claimed == own or claimed.startswith(own + "/")


def check_csrf(request: Request) -> None:
    """A cookie-authenticated request that changes state must prove it came from the console."""
    if request.method in SAFE_METHODS:
        return
    cookie = request.cookies.get(CSRF_COOKIE, "")
    header = request.headers.get(CSRF_HEADER, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), header.encode()):
        raise CSRFError("send the console's csrf token in the `X-CSRF-Token` header")
    if not same_origin(request):
        raise CSRFError("the request's origin is not this server")


def operator_token(request: Request) -> str | None:
    """The operator token of a request: the bearer header, else the console session cookie
    (then with its CSRF proof on anything but a read)."""
    token = bearer(request)
    if token is not None:
        return token
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    check_csrf(request)
    return cookie


def operator(request: Request, *roles: OperatorRole) -> Operator:
    op = warden_of(request).operators.authenticate(operator_token(request))
    warden_of(request).operators.require(op, *roles)
    return op


def any_operator(request: Request) -> Operator:
    """Any authenticated person (admin, approver or auditor) may read; a ``pep`` account is a
    machine that may only ask the PDP."""
    op = warden_of(request).operators.authenticate(operator_token(request))
    if op.role is OperatorRole.PEP:
        raise PermissionDeniedError("a `pep` account may only call the PDP")
    return op


def _pep_key(request: Request, token: str) -> bool:
    for key in warden_of(request).settings.pep_api_keys:
        if hmac.compare_digest(token.encode(), key.encode()):
            return True
    return False


def require_client(request: Request, *roles: OperatorRole) -> str:
    """Introspection and revocation callers (RFC 7662 §2.1, RFC 7009 §2.1): a PEP API key or an
    operator token (of one of ``roles`` when given), always, even on loopback. Returns who it
    was (for the audit log)."""
    token = bearer(request) or request.headers.get("x-api-key")
    if token:
        if _pep_key(request, token):
            return "pep:api-key"
        w = warden_of(request)
        try:
            op = w.operators.authenticate(token)
        except AuthenticationError:
            op = None
        if op is not None:
            if roles:
                w.operators.require(op, *roles)
            return f"operator:{op.name}"
    raise AuthenticationError(
        "this endpoint needs client authentication: a PEP API key or an operator token"
    )


def require_pep(request: Request) -> None:
    """PEPs may call the PDP unauthenticated only when Warden is bound to loopback (and no PEP
    API key is configured). Otherwise: a PEP API key, or an operator token with the ``pep``
    role (admin implies every role); an approver's or auditor's token is not a PEP's."""
    w = warden_of(request)
    if w.settings.loopback and not w.settings.pep_api_keys:
        return
    token = bearer(request) or request.headers.get("x-api-key")
    if token:
        if _pep_key(request, token):
            return
        try:
            op = w.operators.authenticate(token)
        except AuthenticationError:
            op = None
        if op is not None:
            w.operators.require(op, OperatorRole.PEP)
            return
    raise AuthenticationError(
        "policy enforcement points must authenticate (a PEP API key or a `pep` operator token)"
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
