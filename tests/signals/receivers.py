"""Real receivers the signals tests start on loopback.

``OTLPReceiver``: an OTLP/HTTP endpoint (``POST /v1/traces``) that decodes each protobuf
``ExportTraceServiceRequest`` with opentelemetry-proto. ``SETReceiver``: an RFC 8935 push
endpoint that verifies every SET with joserfc (an independent JOSE library, not Warden's PyJWT)
against the JWKS Warden publishes, and keeps a cache of credentials by task that it drops on
``session-revoked``. ``fail_with`` makes it answer that status (down receiver).
"""

from __future__ import annotations

import json
import threading
import warnings
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from joserfc import jwt
from joserfc.jwk import KeySet
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"


class _Server:
    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@dataclass
class Span:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]


class OTLPReceiver:
    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.content_types: list[str] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                with receiver._lock:
                    receiver.content_types.append(self.headers.get("content-type", ""))
                    for rs in request.resource_spans:
                        for ss in rs.scope_spans:
                            for s in ss.spans:
                                receiver.spans.append(
                                    Span(
                                        s.name,
                                        s.trace_id.hex(),
                                        s.span_id.hex(),
                                        s.parent_span_id.hex(),
                                        {a.key: _value(a.value) for a in s.attributes},
                                    )
                                )
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = _Server(Handler)

    @property
    def endpoint(self) -> str:
        return self.server.base

    def named(self, name: str) -> list[Span]:
        with self._lock:
            return [s for s in self.spans if s.name == name]


def _value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    return getattr(v, kind) if kind else None


@dataclass
class SETReceiver:
    jwks: dict[str, Any]
    issuer: str
    audience: str
    fail_with: int | None = None
    cache: dict[str, str] = field(default_factory=dict)  # task id -> cached introspection
    events: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 0
    authorization: list[str | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                status, answer = receiver._take(self.headers.get("content-type", ""), body)
                receiver.authorization.append(self.headers.get("authorization"))
                raw = json.dumps(answer).encode() if answer else b""
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = _Server(Handler)

    @property
    def url(self) -> str:
        return self.server.base + "/caep"

    def verify(self, token: str) -> dict[str, Any]:
        """Verify with joserfc: signature over the published JWKS, typ, iss, aud."""
        keys = KeySet.import_key_set(self.jwks)
        with warnings.catch_warnings():  # joserfc flags the name "EdDSA" (RFC 9864), not the key
            warnings.simplefilter("ignore")
            decoded = jwt.decode(token, keys, algorithms=["EdDSA"])
        assert decoded.header["typ"] == "secevent+jwt"
        claims = dict(decoded.claims)
        registry = jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.audience},
            jti={"essential": True},
        )
        registry.validate(claims)
        assert len(claims["events"]) == 1
        return claims

    def _take(self, content_type: str, body: bytes) -> tuple[int, dict[str, Any] | None]:
        with self._lock:
            self.attempts += 1
            if self.fail_with is not None:
                return self.fail_with, None
            if content_type != "application/secevent+jwt":
                return 400, {"err": "invalid_request", "description": "content type"}
            try:
                claims = self.verify(body.decode())
            except Exception as exc:  # what a receiver does with a bad SET: refuse it
                return 400, {"err": "invalid_key", "description": str(exc)[:100]}
            self.events.append(claims)
            if SESSION_REVOKED in claims["events"]:
                sub = claims["sub_id"]
                if sub.get("format") == "complex":
                    self.cache.pop(sub["session"]["id"], None)
            return 202, None

    def types(self) -> list[str]:
        with self._lock:
            return [next(iter(e["events"])) for e in self.events]

    def close(self) -> None:
        self.server.close()
