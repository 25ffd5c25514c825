"""Refuse every change while audit records cannot be made durable (ADR 0090).

A use case writes its rows and then its audit record; if the record then fails, the change is
already made but unrecorded. So while the writer is unavailable, a request that may change state
(any method but GET/HEAD/OPTIONS) is refused up front with 503 ``audit_unavailable`` before it
reaches a use case. Reads keep working, so operators can look at what is going on.

Changes toward deny — ending a task, revoking a credential, suspending an agent, disabling an
operator — are let through: a kill switch must never be the thing an outage blocks (issue 11,
item 5). They take effect; whether their record could be written is said in their answer.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from warden.api.errors import error_body, json_response
from warden.audit.writer import AuditWriter

_READS = frozenset({"GET", "HEAD", "OPTIONS"})
# (prefix, suffix) of the kill-switch paths
_TOWARD_DENY = (
    ("/v1/tasks/", "/complete"),
    ("/v1/tasks/", "/fail"),
    ("/v1/tasks/", "/revoke"),
    ("/v1/agents/", "/suspend"),
    ("/v1/agents/", "/decommission"),
    ("/v1/operators/", "/disable"),
    ("/oauth2/revoke", ""),
)


def _toward_deny(path: str) -> bool:
    return any(path.startswith(p) and path.endswith(s) for p, s in _TOWARD_DENY)


class AuditGate:
    def __init__(self, app: ASGIApp, *, writer: AuditWriter) -> None:
        self.app = app
        self.writer = writer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] in _READS
            or self.writer.available
            or _toward_deny(scope["path"])
        ):
            await self.app(scope, receive, send)
            return
        body = error_body(
            "audit_unavailable",
            "audit records cannot be written at the moment: the request is refused",
            scope.get("warden.request_id"),
        )
        await json_response(body, 503, {"Retry-After": "1"})(scope, receive, send)
