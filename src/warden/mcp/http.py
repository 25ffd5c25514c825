"""The proxy over Streamable HTTP, as an OAuth protected resource (RFC 9728, RFC 8707).

``POST /mcp`` carries one JSON-RPC message and answers with JSON (``202`` for notifications).
Every request needs ``Authorization: Bearer <task credential>`` whose audience is this proxy
(``resource`` in the config): a missing, invalid or foreign-audience credential is ``401`` with
``WWW-Authenticate: Bearer resource_metadata=…`` pointing at
``/.well-known/oauth-protected-resource``, where clients learn which authorization server
(Warden) issues credentials for it. The credential is checked here (signature, issuer,
audience, expiry) and again by the PDP on every decision (revocation, task and agent live); it
is never sent upstream.

A DPoP-bound credential (``cnf.jkt``, RFC 9449) comes as ``Authorization: DPoP <credential>``
with a ``DPoP`` proof for this request (``htm`` the method, ``htu`` the proxy's URL, ``ath`` the
credential's hash). The proxy checks the proof — signature, key = the binding, method, URL, age,
and replay within this proxy — and hands it to the PDP with every decision of the request,
which checks it again against the shared replay ledger.

``initialize`` opens a session (``Mcp-Session-Id``) bound to the credential's agent; later
requests must name it (``400`` without, ``404`` when unknown, ``403`` from another agent).
``DELETE /mcp`` ends it. A request from a client that accepts ``text/event-stream`` is answered
with an SSE stream as soon as an upstream sends a notification for it — progress of that call
(matched by ``progressToken``) and log messages — followed by the response; otherwise with
plain JSON. The proxy offers no standalone server-to-client stream (``GET`` is ``405``).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from warden.core.clock import Clock, SystemClock
from warden.errors import (
    DecisionUnavailableError,
    DPoPProofError,
    KeyNotFoundError,
    TokenInvalidError,
    TokenRevokedError,
)
from warden.sdk.signals import SignalReceiver
from warden.telemetry import NO_TRACING, TRACEPARENT, Tracing, incoming_traceparent, otlp_tracing
from warden.tokens.dpop import PROOF_ALGORITHMS, DPoPVerifier
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


class _LocalLedger:
    """Proofs this proxy has seen (a replayed request is refused here; the PDP also checks the
    shared ledger). Bounded by the proofs' lifetime."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}

    def remember_proof(self, key: str, *, expires_at: float, now: float) -> bool:
        if len(self._seen) > 10_000:
            self._seen = {k: t for k, t in self._seen.items() if t > now}
        if self._seen.get(key, 0.0) > now:
            return False
        self._seen[key] = expires_at
        return True


# the DPoP proof of the request being handled: each request's own, even when they overlap
_REQUEST_PROOF: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "warden_mcp_dpop_proof", default=None
)


class CredentialCheck:
    """Verifies that a task credential is valid and meant for this proxy (its audience), and
    the DPoP proof of a bound one."""

    def __init__(
        self,
        verifier: TaskCredentialVerifier,
        refresh: Callable[[], Awaitable[None]] | None = None,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.verifier = verifier
        self._refresh = refresh
        self._refreshed_at = 0.0
        self.dpop = DPoPVerifier(clock or SystemClock(), _LocalLedger())
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
    return CredentialCheck(verifier, clock=warden.clock), issuer


SESSION_IDLE = 3600.0  # an HTTP session unused this long is closed to make room


@dataclass
class _Stream:
    """An open SSE response: the notifications meant for its request go in ``queue``."""

    queue: asyncio.Queue[dict[str, Any]]
    progress_token: Any = None


@dataclass
class _Session:
    proxy: ProxySession
    agent: str
    token: str = field(repr=False)
    used: float = field(default_factory=time.monotonic)
    streams: list[_Stream] = field(default_factory=list)

    def route(self, message: dict[str, Any]) -> None:
        """Progress goes to the stream of the call it is about; anything else to every open
        stream. With no stream open it is dropped (there is no standalone stream)."""
        if message.get("method") == "notifications/progress":
            token = (message.get("params") or {}).get("progressToken")
            targets = [s for s in self.streams if token is not None and s.progress_token == token]
        else:
            targets = list(self.streams)
        for stream in targets:
            stream.queue.put_nowait(message)


class _HTTPContext:
    """The PDP, with each decision carrying the request's DPoP proof and ``context.http`` (what
    the PDP checks a bound credential's proof against)."""

    def __init__(self, pdp: Any, resource: str) -> None:
        self._pdp = pdp
        self._http = {"method": "POST", "uri": resource}
        if hasattr(pdp, "observe_tools"):
            self.observe_tools = pdp.observe_tools

    def _bind(self, request: Mapping[str, Any]) -> dict[str, Any]:
        proof = _REQUEST_PROOF.get()
        if proof is None:
            return dict(request)
        subject = dict(request.get("subject") or {})
        subject["properties"] = {**(subject.get("properties") or {}), "dpop": proof}
        context = {**(request.get("context") or {}), "http": self._http}
        return {**request, "subject": subject, "context": context}

    def evaluate(self, request: Mapping[str, Any]) -> Any:
        return self._pdp.evaluate(self._bind(request))

    def evaluations(self, requests: Sequence[Mapping[str, Any]]) -> Any:
        return self._pdp.evaluations([self._bind(r) for r in requests])


def _sse(message: dict[str, Any]) -> bytes:
    return b"event: message\ndata: " + orjson.dumps(message) + b"\n\n"


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
    wrapped = Gate(_HTTPContext(gate.pdp, resource), gate.pins, offload=gate.offload)
    wrapped.observers = gate.observers  # the caller's metrics hooks, shared
    gate = wrapped
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
                "dpop_signing_alg_values_supported": list(PROOF_ALGORITHMS),
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

    def dpop_challenge(message: str) -> Response:
        algs = " ".join(PROOF_ALGORITHMS)
        return _json(
            {"error": "invalid_dpop_proof", "error_description": message},
            401,
            {"WWW-Authenticate": f'DPoP error="invalid_dpop_proof", algs="{algs}"'},
        )

    async def authenticate(
        request: Request,
    ) -> tuple[VerifiedCredential, str, str | None] | Response:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        scheme, token = scheme.lower(), token.strip()
        if scheme not in ("bearer", "dpop") or not token:
            return challenge()
        try:
            cred = await check.verify(token)
        except TokenInvalidError:
            return challenge("invalid_token")
        if cred.jkt is None:
            if scheme == "dpop":
                return challenge("invalid_token")  # not bound: the Bearer scheme
            return cred, token, None
        if scheme != "dpop":
            return dpop_challenge("this credential is DPoP-bound: use the DPoP scheme")
        proofs = request.headers.getlist("dpop")
        if len(proofs) != 1:
            return dpop_challenge("send exactly one DPoP proof header")
        try:
            check.dpop.verify(
                proofs[0], method=request.method, uri=resource, access_token=token, jkt=cred.jkt
            )
        except DPoPProofError as exc:
            return dpop_challenge(exc.message)
        return cred, token, proofs[0]

    async def post(request: Request) -> Response:
        if not origin_allowed(request):
            return _json({"error": "forbidden", "error_description": "origin not allowed"}, 403)
        auth = await authenticate(request)
        if isinstance(auth, Response):
            return auth
        cred, token, proof = auth
        _REQUEST_PROOF.set(proof)
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
                ProxySession(
                    config,
                    gate,
                    lambda: subject_of(new_id),
                    notify_client=lambda note: relay(new_id, note),
                ),
                cred.subject,
                token,
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
            if (
                isinstance(message, dict)
                and "id" in message
                and isinstance(method, str)
                and method != "initialize"
                and "text/event-stream" in request.headers.get("accept", "")
            ):
                answer = await streamed(state, message)
                metrics.answered(method, time.perf_counter() - started)
                return answer
            reply = await state.proxy.handle(message)
        metrics.answered(method, time.perf_counter() - started)
        if reply is None:
            return Response(status_code=202, headers=headers)
        if headers and "error" in reply:  # a failed initialize opens no session
            sessions.pop(session_id, None)
            await state.proxy.close()
            headers = {}
        return _json(reply, headers=headers)

    async def relay(session_id: str, note: dict[str, Any]) -> None:
        state = sessions.get(session_id)
        if state is not None:
            state.route(note)

    async def streamed(state: _Session, message: dict[str, Any]) -> Response:
        """JSON when the answer comes first; an SSE stream once a notification does."""
        params = message.get("params")
        meta = params.get("_meta") if isinstance(params, dict) else None
        stream = _Stream(
            asyncio.Queue(), meta.get("progressToken") if isinstance(meta, dict) else None
        )
        state.streams.append(stream)
        handling = asyncio.ensure_future(state.proxy.handle(message))
        first = asyncio.ensure_future(stream.queue.get())
        await asyncio.wait({handling, first}, return_when=asyncio.FIRST_COMPLETED)
        if not first.done():
            first.cancel()
            state.streams.remove(stream)
            reply = handling.result()
            if reply is None:
                return Response(status_code=202)
            return _json(reply)

        async def events() -> AsyncIterator[bytes]:
            try:
                yield _sse(first.result())
                while True:
                    nxt = asyncio.ensure_future(stream.queue.get())
                    await asyncio.wait({handling, nxt}, return_when=asyncio.FIRST_COMPLETED)
                    if nxt.done():
                        yield _sse(nxt.result())
                        continue
                    nxt.cancel()
                    while not stream.queue.empty():
                        yield _sse(stream.queue.get_nowait())
                    reply = handling.result()
                    if reply is not None:
                        yield _sse(reply)
                    return
            finally:
                with contextlib.suppress(ValueError):
                    state.streams.remove(stream)
                if not handling.done():
                    handling.cancel()

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
        )

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
