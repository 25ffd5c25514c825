"""Real HTTP(S) servers on loopback for the attestation tests (OIDC issuer, bundle endpoint)."""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

Route = Callable[[], tuple[int, bytes, dict[str, str]]]


class LoopbackServer:
    """Serves ``routes`` (path → callable giving status, body, headers); counts hits per path."""

    def __init__(self, tls: tuple[Path, Path] | None = None) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: dict[str, int] = {}
        self.delay = 0.0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits[self.path] = outer.hits.get(self.path, 0) + 1
                if outer.delay:
                    time.sleep(outer.delay)
                route = outer.routes.get(self.path)
                status, body, headers = route() if route else (404, b"{}", {})
                try:
                    self.send_response(status)
                    for name, value in {"Content-Type": "application/json", **headers}.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def json(self, path: str, document: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(document).encode()
        self.routes[path] = lambda: (200, body, headers or {})

    def raw(self, path: str, status: int, body: bytes) -> None:
        self.routes[path] = lambda: (status, body, {})

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@contextmanager
def loopback(tls: tuple[Path, Path] | None = None) -> Iterator[LoopbackServer]:
    server = LoopbackServer(tls)
    try:
        yield server
    finally:
        server.stop()
