"""The proxy over Streamable HTTP, as an OAuth protected resource (RFC 9728, RFC 8707).

``POST /mcp`` carries one JSON-RPC message and answers with JSON (``202`` for notifications).
Every request needs ``Authorization: Bearer <task credential>`` whose audience is this proxy
(``resource`` in the config): a missing, invalid or foreign-audience credential is ``401`` with
``WWW-Authenticate: Bearer resource_metadata=…`` pointing at
``/.well-known/oauth-protected-resource``, where clients learn which authorization server
(Warden) issues credentials for it. The credential is checked here (signature, issuer,
audience, expiry) and again by the PDP on every decision (revocation, task and agent live); it
is never sent upstream.

``initialize`` opens a session (``Mcp-Session-Id``) bound to the credential's agent; later
requests must name it (``400`` without, ``404`` when unknown, ``403`` from another agent).
``DELETE /mcp`` ends it. The proxy offers no server-to-client stream (``GET`` is ``405``).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from warden.errors import (
    DecisionUnavailableError,
    KeyNotFoundError,
    TokenInvalidError,
    TokenRevokedError,
)
from warden.sdk.signals import SignalReceiver
from warden.telemetry import NO_TRACING, TRACEPARENT, Tracing, incoming_traceparent, otlp_tracing
from warden.tokens.jwks import PublishedKeys
from warden.tokens.verifier import TaskCredentialVerifier, VerifiedCredential

from . import mapping as m
from .config import ProxyConfig
from .metrics import ProxyMetrics
from .proxy import Gate, ProxySession
from .runner import Backend, open_backend
from .signals import SignalFollower

MAX_BODY = 4 * 1024 * 1024
METADATA_PATH = "/.well-known/oauth-protected-resource"
JWKS_REFRESH_INTERVAL = 30.0
_LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


class CredentialCheck:
    """Verifies that a task credential is valid and meant for this proxy (its audience)."""

    def __init__(
        self,
        verifier: TaskCredentialVerifier,
        refresh: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.verifier = verifier
        self._refresh = refresh
        self._refreshed_at = 0.0
        self._ended_tasks: set[str] = set()
        self._revoked: set[str] = set()

    def session_revoked(self, task_id: str | None, jtis: frozenset[str]) -> None:
        """A Shared Signals receiver hook (``SignalReceiver.on_session_revoked``): refuse the
        task's credentials from now on, before their expiry."""
        if task_id:
            self._ended_tasks.add(task_id)
        self._revoked |= jtis

    async def verify(self, token: str) -> VerifiedCredential:
        cred = await self._verify(token)
        if cred.task_id in self._ended_tasks or cred.jti in self._revoked:
            raise TokenRevokedError("the task's session was revoked")
        return cred

    async def _verify(self, token: str) -> VerifiedCredential:
        try:
            return self.verifier.verify(token)
        except KeyNotFoundError:
            # a key Warden rotated in since we fetched the set: fetch again, at most every 30 s
            if (
                self._refresh is None
                or time.monotonic() - self._refreshed_at < JWKS_REFRESH_INTERVAL
            ):
                raise
            self._refreshed_at = time.monotonic()
            await self._refresh()
            return self.verifier.verify(token)


async def remote_check(warden_url: str, resource: str) -> tuple[CredentialCheck, str]:
    """A check over a remote Warden's published keys; also returns its issuer URL."""
    try:
        async with httpx.AsyncClient(base_url=warden_url, timeout=5.0) as http:
            meta_url = "/.well-known/oauth-authorization-server"
            meta = (await http.get(meta_url)).raise_for_status().json()
            jwks_uri = meta.get("jwks_uri") or f"{warden_url}/.well-known/jwks.json"
            keys = PublishedKeys((await http.get(jwks_uri)).raise_for_status().json())
            issuer = str(meta["issuer"])
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        raise DecisionUnavailableError(
            f"cannot read Warden's metadata and keys at `{warden_url}`: {exc}"
        ) from exc

    async def refresh() -> None:
        async with httpx.AsyncClient(timeout=5.0) as http:
            keys.update((await http.get(jwks_uri)).raise_for_status().json())

    from warden.core.clock import SystemClock

    verifier = TaskCredentialVerifier(
        keys,
        issuer=issuer,
        audiences=(resource,),
        clock=SystemClock(),
    )
    return CredentialCheck(verifier, refresh), issuer


def embedded_check(warden: Any, resource: str) -> tuple[CredentialCheck, str]:
    issuer = warden.settings.effective_issuer
    verifier = TaskCredentialVerifier(
        warden.keys, issuer=issuer, audiences=(resource,), clock=warden.clock
    )
    return CredentialCheck(verifier), issuer


SESSION_IDLE = 3600.0  # an HTTP session unused this long is closed to make room


@dataclass
class _Session:
    proxy: ProxySession
    agent: str
    token: str = field(repr=False)
    used: float = field(default_factory=time.monotonic)


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def create_proxy_app(
    config: ProxyConfig,
    gate: Gate,
    check: CredentialCheck,
    *,
    resource: str,
    issuer: str,
    tracing: Tracing = NO_TRACING,
) -> Starlette:
    """The Streamable HTTP endpoint at the path of ``resource`` (``/mcp`` by default)."""
    path = urlsplit(resource).path or "/mcp"
    origin = urlsplit(resource)
    metadata_url = f"{origin.scheme}://{origin.netloc}{METADATA_PATH}{path}"
    sessions: dict[str, _Session] = {}
    metrics = ProxyMetrics()
    gate.observers.append(metrics.decided)

    def challenge(error: str | None = None, status: int = 401) -> Response:
        parts = [f'resource_metadata="{metadata_url}"']
        if error:
            parts.insert(0, f'error="{error}"')
        body = {
            "error": error or "unauthorized",
            "error_description": "a task credential for "
            f"`{resource}` is required (Authorization: Bearer …)",
        }
        return _json(body, status, {"WWW-Authenticate": "Bearer " + ", ".join(parts)})

    async def metadata(request: Request) -> Response:
        return _json(
            {
                "resource": resource,
                "authorization_servers": [issuer],
                "bearer_methods_supported": ["header"],
                "resource_name": "Warden MCP proxy",
                "resource_documentation": "https://github.com/warden/warden/blob/main/docs/enforcement.md",
            },
            headers={"Cache-Control": "public, max-age=60"},
        )

    def origin_allowed(request: Request) -> bool:
        sent = request.headers.get("origin")
        if sent is None:
            return True  # not a browser
        host = urlsplit(sent).hostname or ""
        return host in _LOOPBACK or sent.rstrip("/") == f"{origin.scheme}://{origin.netloc}"

    async def authenticate(request: Request) -> tuple[VerifiedCredential, str] | Response:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return challenge()
        try:
            cred = await check.verify(token)
        except TokenInvalidError:
            return challenge("invalid_token")
        return cred, token

    async def post(request: Request) -> Response:
        if not origin_allowed(request):
            return _json({"error": "forbidden", "error_description": "origin not allowed"}, 403)
        auth = await authenticate(request)
        if isinstance(auth, Response):
            return auth
        cred, token = auth
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            return _json(m.error_response(None, m.INVALID_REQUEST, "send application/json"), 415)
        body = await request.body()
        if len(body) > MAX_BODY:
            return _json(m.error_response(None, m.INVALID_REQUEST, "the message is too large"), 413)
        try:
            message = orjson.loads(body)
        except orjson.JSONDecodeError:
            return _json(m.error_response(None, m.PARSE_ERROR, "the body is not valid JSON"), 400)
        session_id = request.headers.get("mcp-session-id")
        headers: dict[str, str] = {}
        if isinstance(message, dict) and message.get("method") == "initialize" and not session_id:
            await expire_idle()
            if len(sessions) >= config.max_sessions:
                return _json(
                    m.error_response(message.get("id"), m.INTERNAL_ERROR, "too many sessions"), 503
                )
            new_id = secrets.token_urlsafe(24)
            sessions[new_id] = _Session(
                ProxySession(config, gate, lambda: subject_of(new_id)), cred.subject, token
            )
            session_id = headers["Mcp-Session-Id"] = new_id
        elif not session_id:
            return _json(m.error_response(None, m.INVALID_REQUEST, "missing Mcp-Session-Id"), 400)
        state = sessions.get(session_id)
        if state is None:
            return _json(m.error_response(None, m.INVALID_REQUEST, "unknown session"), 404)
        if state.agent != cred.subject:
            return _json(
                {"error": "forbidden", "error_description": "the session belongs to another agent"},
                403,
            )
        state.token = token  # a renewed credential takes over at once
        state.used = time.monotonic()
        method = message.get("method") if isinstance(message, dict) else None
        parent = request.headers.get(TRACEPARENT)
        attributes = {"mcp.method.name": str(method)[:100] if method else None}
        started = time.perf_counter()
        with tracing.span("warden.mcp", attributes, traceparent=parent, kind="server"):
            # W3C Trace Context: the client's trace continues through the decision calls
            incoming_traceparent.set(tracing.traceparent() or parent)
            reply = await state.proxy.handle(message)
        metrics.answered(method, time.perf_counter() - started)
        if reply is None:
            return Response(status_code=202, headers=headers)
        if headers and "error" in reply:  # a failed initialize opens no session
            sessions.pop(session_id, None)
            await state.proxy.close()
            headers = {}
        return _json(reply, headers=headers)

    async def expire_idle() -> None:
        cutoff = time.monotonic() - SESSION_IDLE
        for sid, idle in [(k, v) for k, v in sessions.items() if v.used < cutoff]:
            sessions.pop(sid, None)
            await idle.proxy.close()

    def subject_of(session_id: str) -> dict[str, Any]:
        state = sessions.get(session_id)
        token = state.token if state else ""
        agent = state.agent if state else ""
        return {"type": "agent", "id": agent, "properties": {"token": token}}

    async def delete(request: Request) -> Response:
        auth = await authenticate(request)
        if isinstance(auth, Response):
            return auth
        session_id = request.headers.get("mcp-session-id", "")
        state = sessions.get(session_id)
        if state is None:
            return Response(status_code=404)
        if state.agent != auth[0].subject:
            return Response(status_code=403)
        sessions.pop(session_id, None)
        await state.proxy.close()
        return Response(status_code=204)

    async def get(request: Request) -> Response:
        return Response(status_code=405, headers={"Allow": "POST, DELETE"})

    async def scrape(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await asyncio.gather(
                *(s.proxy.close() for s in sessions.values()), return_exceptions=True
            )
            sessions.clear()

    return Starlette(
        routes=[
            Route(METADATA_PATH, metadata, methods=["GET"]),
            Route(f"{METADATA_PATH}{path}", metadata, methods=["GET"]),
            Route(path, post, methods=["POST"]),
            Route(path, delete, methods=["DELETE"]),
            Route(path, get, methods=["GET"]),
            Route("/metrics", scrape, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


async def follow_signals(
    config: ProxyConfig, backend: Backend, check: CredentialCheck
) -> SignalFollower | None:
    """A receiver for the configured stream whose ``session-revoked`` events reach ``check``."""
    if config.signals is None:
        return None
    if backend.warden is not None:
        issuer, jwks = backend.warden.settings.effective_issuer, backend.warden.keys.jwks()
    else:
        assert config.warden_url is not None
        try:
            async with httpx.AsyncClient(base_url=config.warden_url, timeout=5.0) as http:
                meta = (await http.get("/.well-known/ssf-configuration")).raise_for_status().json()
                jwks = (await http.get(meta["jwks_uri"])).raise_for_status().json()
                issuer = str(meta["issuer"])
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise DecisionUnavailableError(
                f"cannot read Warden's Shared Signals metadata at `{config.warden_url}`: {exc}"
            ) from exc
    receiver = SignalReceiver(issuer, jwks, audience=config.signals.audience)
    receiver.on_session_revoked(check.session_revoked)
    return SignalFollower(config.signals, receiver)


async def build_http(
    config: ProxyConfig, backend: Backend, resource: str, tracing: Tracing = NO_TRACING
) -> Starlette:
    if backend.warden is not None:
        check, issuer = embedded_check(backend.warden, resource)
    else:
        assert config.warden_url is not None
        check, issuer = await remote_check(config.warden_url, resource)
    app = create_proxy_app(
        config, backend.gate, check, resource=resource, issuer=issuer, tracing=tracing
    )
    app.state.check = check
    return app


async def run_http(config: ProxyConfig, host: str, port: int) -> None:
    import uvicorn

    resource = config.resource or f"http://{host}:{port}/mcp"
    async with open_backend(config) as backend:
        endpoint = os.environ.get("WARDEN_OTLP_ENDPOINT")  # the proxy's own traces, when set
        tracing = (
            otlp_tracing(endpoint, service_name="warden-mcp-proxy") if endpoint else NO_TRACING
        )
        app = await build_http(config, backend, resource, tracing)
        server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
        follower = await follow_signals(config, backend, app.state.check)
        task = asyncio.create_task(follower.run()) if follower is not None else None
        try:
            await server.serve()
        finally:
            if task is not None:
                task.cancel()
            tracing.shutdown()
