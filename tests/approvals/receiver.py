"""A real webhook receiver for tests: an HTTP server on loopback that checks every signature.

Each delivery is verified twice, independently of Warden's code: with the ``standardwebhooks``
library and with a hand-written HMAC-SHA256 over ``{id}.{timestamp}.{body}``. ``fail_first``
answers 500 to the first N deliveries; ``hang_first`` sleeps past the sender's timeout.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook

from warden.webhooks import decode_secret, new_secret


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    verified: bool
    hand_verified: bool

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class WebhookReceiver:
    secret: str = field(default_factory=new_secret)
    fail_first: int = 0
    hang_first: int = 0
    hang_for: float = 3.0
    received: list[Received] = field(default_factory=list)
    attempts: int = 0
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks/warden"

    def __enter__(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver._lock:
                    receiver.attempts += 1
                    n = receiver.attempts
                if n <= receiver.hang_first:
                    time.sleep(receiver.hang_for)
                elif n <= receiver.hang_first + receiver.fail_first:
                    self.send_response(500)
                    self.end_headers()
                    return
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.received.append(
                    Received(
                        headers,
                        body,
                        receiver._verify(headers, body),
                        _by_hand(receiver.secret, headers, body),
                    )
                )
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    def _verify(self, headers: dict[str, str], body: bytes) -> bool:
        try:
            Webhook(self.secret).verify(body, headers)
        except Exception:
            return False
        return True

    def events(self, type_prefix: str = "") -> list[dict[str, Any]]:
        return [r.event for r in self.received if r.event["type"].startswith(type_prefix)]

    def wait_for(self, event_type: str, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events():
                if event["type"] == event_type:
                    return event
            time.sleep(0.05)
        raise AssertionError(f"no `{event_type}` webhook; got {[e['type'] for e in self.events()]}")


def _by_hand(secret: str, headers: dict[str, str], body: bytes) -> bool:
    key = decode_secret(secret)
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    given = [
        s.split(",", 1)[1] for s in headers["webhook-signature"].split() if s.startswith("v1,")
    ]
    return any(hmac.compare_digest(expected, g) for g in given)
