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
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import time
from typing import Any

from warden.attestation.unix import PeerCredentials, peer_credentials

PEER_EXTENSION = "warden.peer"


class _ConnectionApp:
    """The app for one connection: adds this connection's extensions to each scope."""

    def __init__(self, app: Any, extensions: dict[str, Any]) -> None:
        self._app = app
        self._extensions = extensions

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") in ("http", "websocket"):
            scope = {**scope, "extensions": {**(scope.get("extensions") or {}), **self._extensions}}
        await self._app(scope, receive, send)


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


def protocol_class() -> type[Any]:
    """uvicorn's chosen HTTP protocol, extended as described in the module docstring."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    class ConnectionFactsProtocol(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
        _warden_pidfd: int | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
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
            if extensions:
                app: Any = self.app  # type: ignore[has-type]  # set by uvicorn's __init__
                self.app = _ConnectionApp(app, extensions)

        def connection_lost(self, exc: Exception | None) -> None:
            super().connection_lost(exc)
            if self._warden_pidfd is not None:
                with contextlib.suppress(OSError):
                    os.close(self._warden_pidfd)
                self._warden_pidfd = None

    return ConnectionFactsProtocol
