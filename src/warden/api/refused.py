"""Refused calls (401/403 on authentication or authorization) go to the refusal log, which
audits them aggregated per source and reason (``service.refusals``)."""

from __future__ import annotations

from starlette.requests import Request

from warden.bootstrap import Warden
from warden.errors import WardenError


def note_refusal(w: Warden, request: Request, exc: Exception, status: int) -> None:
    code = exc.code if isinstance(exc, WardenError) else "internal_error"
    detail = exc.detail.get("reason") if isinstance(exc, WardenError) else None
    reason = f"{code}:{detail}" if isinstance(detail, str) and detail else code
    source = request.client.host if request.client else "unknown"
    try:
        w.refusals.note(source, reason, f"{request.method} {request.url.path}", status)
    except WardenError:  # the refusal stands even when it cannot be recorded right now
        pass
