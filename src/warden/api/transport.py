"""What the connection proved, handed to the ASGI app: TLS client certificates, Unix peers.

uvicorn (0.54) does not fill the ASGI ``tls`` extension, and the scope it builds carries no
transport. So ``warden serve`` runs uvicorn with a protocol class of its own (uvicorn's
``http=`` option takes a class): a subclass of the HTTP protocol uvicorn would have picked
that, when a connection is made, reads what the transport knows *once* and wraps the app for
that connection only, adding to every request's scope:

* ``scope["extensions"]["tls"]`` — the ASGI TLS extension (``client_cert_chain`` as PEM
  strings, leaf first; ``tls_version``; ``client_cert_error``), from the ``ssl_object`` of the
  transport. The handshake already verified the chain against every trust domain's X.509 roots
  (``CERT_OPTIONAL``: clients without certificates still connect, for the other methods); the
  token endpoint verifies again against the *one* trust domain the SVID names. Python before
  3.13 exposes only the leaf (``getpeercert``); with 3.13+ the verified chain.
* ``scope["extensions"]["warden.peer"]`` — ``PeerCredentials`` of a Unix-socket client
  (``SO_PEERCRED`` and a pidfd), read when the connection was accepted. The pidfd is closed
  with the connection.

Nothing a client sends can set these: they come from the server's own transport, and an app
served any other way simply sees no client certificate and no peer.

The same class bounds slow and surplus clients (``ConnectionLimits``, ADR 0095): uvicorn only
times out *idle* keep-alive connections, and any received byte cancels that timer, so a client
trickling a header byte at a time holds a connection forever (slowloris). Here a request's
headers must be complete within ``header_timeout`` of the connection opening or of the previous
response (else a raw ``408 request_timeout`` and close); its body must arrive within
``body_timeout`` of the headers (else ``408 request_timeout`` with ``Connection: close``); and a
connection beyond ``max_connections`` is answered ``503 server_busy`` and closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any

import orjson

from warden.attestation.unix import PeerCredentials, peer_credentials

PEER_EXTENSION = "warden.peer"

log = logging.getLogger("warden.api")


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """Bounds on slow and surplus clients (``server:`` config, ADR 0095); seconds."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int = 1000


def raise_file_limit(max_connections: int, spare: int = 256) -> int:
    """Raise the soft open-file limit towards ``max_connections`` plus ``spare`` (database,
    log, key files), within the hard limit, as Go's runtime does at start: a default soft
    limit of 1024 would otherwise make accept() fail before the cap is reached. Returns the
    soft limit in force."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max_connections + spare
    if hard != resource.RLIM_INFINITY:
        want = min(want, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (ValueError, OSError):
            log.warning("could not raise the open-file limit to %d (it is %d)", want, soft)
    if soft != resource.RLIM_INFINITY and soft < want:
        log.warning(
            "the open-file limit (%d) is below server.max_connections (%d) plus spare",
            soft,
            max_connections,
        )
    return int(soft)


def _error(status: int, reason: str, code: str, message: str, extra: bytes = b"") -> bytes:
    """A complete HTTP/1.1 error response with the project's error body, closing the connection."""
    body = orjson.dumps(
        {"error": {"code": code, "message": message, "details": {}}, "request_id": None}
    )
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n"
    ).encode("latin-1")
    return head + extra + b"\r\n" + body


HEADER_TIMEOUT_RESPONSE = _error(
    408, "Request Timeout", "request_timeout", "the request headers did not arrive in time"
)


async def _send_error(send: Any, status: int, code: str, message: str, retry: bool) -> None:
    body = orjson.dumps(
        {"error": {"code": code, "message": message, "details": {}}, "request_id": None}
    )
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    if retry:
        headers.append((b"retry-after", b"1"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _ConnectionApp:
    """The app for one connection: adds this connection's extensions to each scope, tells the
    protocol when a request's headers are in and its response is out, bounds the body read."""

    def __init__(self, app: Any, extensions: dict[str, Any], conn: Any = None) -> None:
        self._app = app
        self._extensions = extensions
        self._conn = conn  # the protocol (None: no limits, as for an app served elsewhere)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") in ("http", "websocket") and self._extensions:
            scope = {**scope, "extensions": {**(scope.get("extensions") or {}), **self._extensions}}
        conn = self._conn
        if conn is None or scope.get("type") != "http":
            if conn is not None:
                conn.warden_headers_in()
            await self._app(scope, receive, send)
            return
        conn.warden_headers_in()
        if conn.warden_surplus:
            await _send_error(
                send, 503, "server_busy", "the server has too many open connections", True
            )
            return
        await self._bounded(conn, scope, receive, send)

    async def _bounded(self, conn: Any, scope: Any, receive: Any, send: Any) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + conn.warden_limits.body_timeout
        started = False
        timed_out = False
        body_done = False

        async def bounded_receive() -> Any:
            nonlocal timed_out, body_done
            if timed_out:
                return {"type": "http.disconnect"}
            if body_done:
                return await receive()  # only a disconnect can come now: no deadline
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                timed_out = True
                log.warning(
                    "request body not received within %.0f s", conn.warden_limits.body_timeout
                )
                if not started:
                    await _send_error(
                        send,
                        408,
                        "request_timeout",
                        "the request body did not arrive in time",
                        False,
                    )
                    conn.warden_response_done()
                else:
                    conn.warden_abort()
                return {"type": "http.disconnect"}
            if message.get("type") != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def tracked_send(message: Any) -> None:
            nonlocal started
            if timed_out:
                return  # the 408 is the response; whatever the app still sends is dropped
            kind = message.get("type")
            if kind == "http.response.start":
                started = True
            await send(message)
            if kind == "http.response.body" and not message.get("more_body", False):
                conn.warden_response_done()

        await self._app(scope, bounded_receive, tracked_send)


def tls_extension(ssl_object: ssl.SSLObject) -> dict[str, Any]:
    chain: list[str] = []
    getter = getattr(ssl_object, "get_verified_chain", None)  # Python 3.13+
    try:
        if getter is not None:
            chain = [str(cert.public_bytes()) for cert in getter()]  # PEM by default
    except Exception:  # fall back to the leaf below
        chain = []
    if not chain:
        leaf = ssl_object.getpeercert(binary_form=True)
        if leaf:
            chain = [ssl.DER_cert_to_PEM_cert(leaf)]
    return {
        "server_cert": None,
        "client_cert_chain": chain,
        "client_cert_name": None,
        "client_cert_error": None,
        "tls_version": None,
        "cipher_suite": None,
        "version": ssl_object.version(),
    }


def protocol_class(limits: ConnectionLimits | None = None) -> type[Any]:
    """uvicorn's chosen HTTP protocol, extended as described in the module docstring."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    bounds = limits or ConnectionLimits()

    class ConnectionFactsProtocol(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
        _warden_pidfd: int | None = None
        _warden_timer: asyncio.TimerHandle | None = None
        warden_limits = bounds
        warden_surplus = False

        # -- the header deadline (one timer per connection, armed while no request is in) --
        def _warden_arm(self) -> None:
            self._warden_disarm()
            loop = asyncio.get_running_loop()
            self._warden_timer = loop.call_later(bounds.header_timeout, self._warden_expired)

        def _warden_disarm(self) -> None:
            if self._warden_timer is not None:
                self._warden_timer.cancel()
                self._warden_timer = None

        def _warden_expired(self) -> None:
            self._warden_timer = None
            transport: Any = self.transport
            if not transport.is_closing():
                transport.write(HEADER_TIMEOUT_RESPONSE)
                transport.close()

        def warden_headers_in(self) -> None:
            self._warden_disarm()

        def warden_response_done(self) -> None:
            transport: Any = self.transport
            if not transport.is_closing():
                self._warden_arm()  # the next request's headers are due from now

        def warden_abort(self) -> None:
            transport: Any = self.transport
            transport.close()

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            connections: Any = self.connections  # uvicorn's server state
            # surplus connections still get their headers read, then a clean 503 (ADR 0095)
            self.warden_surplus = len(connections) > bounds.max_connections
            self._warden_arm()
            extensions: dict[str, Any] = {}
            ssl_object = transport.get_extra_info("ssl_object")
            if ssl_object is not None:
                extensions["tls"] = tls_extension(ssl_object)
            sock = transport.get_extra_info("socket")
            if sock is not None and sock.family == socket.AF_UNIX:
                try:
                    peer: PeerCredentials | None = peer_credentials(sock, time.time())
                except OSError:
                    peer = None
                if peer is not None:
                    self._warden_pidfd = peer.pidfd
                    extensions[PEER_EXTENSION] = peer
            app: Any = self.app  # type: ignore[has-type]  # set by uvicorn's __init__
            self.app = _ConnectionApp(app, extensions, self)

        def connection_lost(self, exc: Exception | None) -> None:
            self._warden_disarm()
            super().connection_lost(exc)
            if self._warden_pidfd is not None:
                with contextlib.suppress(OSError):
                    os.close(self._warden_pidfd)
                self._warden_pidfd = None

    return ConnectionFactsProtocol
