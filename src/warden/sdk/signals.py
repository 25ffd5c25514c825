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

import threading
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from warden.errors import TokenInvalidError
from warden.tokens.secevent import verify_set

SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
Listener = Callable[[str | None, frozenset[str]], None]  # (task id, credential jtis)


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

    def push_app(self) -> Any:
        """An ASGI app taking RFC 8935 pushes at any path."""
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse, Response
        from starlette.routing import Route

        async def receive(request: Request) -> Response:
            if (
                request.headers.get("content-type", "").split(";")[0].strip()
                != "application/secevent+jwt"
            ):
                return JSONResponse({"err": "invalid_request", "description": "not a SET"}, 400)
            try:
                self.handle((await request.body()).decode("ascii", "replace"))
            except TokenInvalidError as exc:
                return JSONResponse({"err": "invalid_key", "description": exc.message}, 400)
            return Response(status_code=202)

        return Starlette(routes=[Route("/{path:path}", receive, methods=["POST"])])


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
