"""A Shared Signals receiver for agents and PEPs: verify Warden's SETs, drop what they revoke.

    receiver = SignalReceiver(issuer, jwks, audience=stream["aud"])
    receiver.watch(keeper)                  # a CredentialKeeper drops its credential
    receiver.on_session_revoked(cache.drop) # any (task_id, jtis) callback
    receiver.poll(stream["delivery"]["endpoint_url"], poll_token)   # RFC 8936, acknowledges

``handle(set)`` verifies one SET (EdDSA over Warden's published JWKS, ``iss`` and ``aud``) and
dispatches it; ``push_app()`` is an ASGI endpoint for RFC 8935 push (202 on success, 400 with an
``err`` object when a SET is refused, so Warden records the refusal instead of retrying).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

import httpx

from warden.errors import TokenInvalidError
from warden.tokens.secevent import verify_set

SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
Listener = Callable[[str | None, frozenset[str]], None]  # (task id, credential jtis)
# ASGI's three callables (asgiref's typing, spelled out: the SDK needs no server package)
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class SignalReceiver:
    def __init__(
        self, issuer: str, jwks: Mapping[str, Any], *, audience: str | None = None
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.jwks = dict(jwks)
        self.audience = audience
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()
        self.revoked_tasks: set[str] = set()
        self.revoked_jtis: set[str] = set()
        self.received: list[dict[str, Any]] = []  # verified claims, newest last

    def on_session_revoked(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def watch(self, keeper: Any) -> None:
        """Make a ``CredentialKeeper`` drop its credential when its task's session is revoked."""

        def drop(task_id: str | None, jtis: frozenset[str]) -> None:
            if task_id is not None and task_id == keeper.credential.task_id:
                keeper.drop()

        self.on_session_revoked(drop)

    def is_revoked(self, *, task_id: str | None = None, jti: str | None = None) -> bool:
        return (task_id is not None and task_id in self.revoked_tasks) or (
            jti is not None and jti in self.revoked_jtis
        )

    def handle(self, token: str) -> dict[str, Any]:
        """Verify and act on one SET; TokenInvalidError when it is not a valid SET for us."""
        claims = verify_set(token, self.jwks, issuer=self.issuer, audience=self.audience)
        events = claims["events"]
        if SESSION_REVOKED in events:
            task_id, jtis = _revoked(claims["sub_id"], events[SESSION_REVOKED])
            with self._lock:
                if task_id:
                    self.revoked_tasks.add(task_id)
                self.revoked_jtis |= jtis
            for listener in self._listeners:
                listener(task_id, jtis)
        with self._lock:
            self.received.append(claims)
        return claims

    def poll(
        self, url: str, token: str, *, http: httpx.Client | None = None, max_events: int = 100
    ) -> int:
        """Fetch and acknowledge every waiting SET (RFC 8936); returns how many were handled."""
        client = http or httpx.Client(timeout=15.0)
        handled = 0
        ack: list[str] = []
        errs: dict[str, dict[str, str]] = {}
        try:
            while True:
                body = {
                    "ack": ack,
                    "setErrs": errs,
                    "maxEvents": max_events,
                    "returnImmediately": True,
                }
                answer = client.post(url, json=body, headers={"Authorization": f"Bearer {token}"})
                answer.raise_for_status()
                data = answer.json()
                ack, errs = [], {}
                for jti, set_token in (data.get("sets") or {}).items():
                    try:
                        self.handle(set_token)
                        ack.append(jti)
                        handled += 1
                    except TokenInvalidError as exc:
                        errs[jti] = {"err": "invalid_request", "description": exc.message}
                if not data.get("moreAvailable") and not ack and not errs:
                    return handled
                if not data.get("moreAvailable"):  # acknowledge the last batch, then stop
                    client.post(
                        url,
                        json={
                            "ack": ack,
                            "setErrs": errs,
                            "maxEvents": 0,
                            "returnImmediately": True,
                        },
                        headers={"Authorization": f"Bearer {token}"},
                    ).raise_for_status()
                    return handled
        finally:
            if http is None:
                client.close()

    def push_app(self) -> PushApp:
        """An ASGI app taking RFC 8935 pushes at any path."""
        return PushApp(self)


class PushApp:
    """RFC 8935 push delivery as a bare ASGI app: ``POST`` a SET at any path.

    ``202`` when the SET was verified and handled, ``400`` with an ``err`` object when it is
    not one for this receiver, ``405`` for another method. The SDK is a client library, so this
    speaks ASGI itself instead of bringing a web framework (ADR 0153); any ASGI server or
    framework can mount it.
    """

    def __init__(self, receiver: SignalReceiver) -> None:
        self.receiver = receiver

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if scope["method"] != "POST":
            await _answer(send, 405, b"", [(b"allow", b"POST")])
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        headers = {k.lower(): v for k, v in scope.get("headers") or []}
        media = headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip()
        if media != "application/secevent+jwt":
            await _error(send, "invalid_request", "not a SET")
            return
        try:
            self.receiver.handle(bytes(body).decode("ascii", "replace"))
        except TokenInvalidError as exc:
            await _error(send, "invalid_key", exc.message)
            return
        await _answer(send, 202, b"")


async def _error(send: Send, err: str, description: str) -> None:
    body = json.dumps({"err": err, "description": description}).encode()
    await _answer(send, 400, body, [(b"content-type", b"application/json")])


async def _answer(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    head = [*(headers or []), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


def _revoked(
    subject: Mapping[str, Any], event: Mapping[str, Any]
) -> tuple[str | None, frozenset[str]]:
    """(task id, jtis) a session-revoked event names: a complex subject's session, or a jwt_id."""
    task_id = None
    jtis: set[str] = set()
    if subject.get("format") == "complex":
        session = subject.get("session") or {}
        if isinstance(session, dict) and isinstance(session.get("id"), str):
            task_id = session["id"]
    elif subject.get("format") == "jwt_id" and isinstance(subject.get("jti"), str):
        jtis.add(subject["jti"])
    for cred in event.get("credentials") or []:
        if isinstance(cred, dict) and isinstance(cred.get("jti"), str):
            jtis.add(cred["jti"])
    return task_id, frozenset(jtis)
