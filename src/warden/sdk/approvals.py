"""Wait for a step-up approval from Python: ``wait_for_approval(request_id, timeout)``.

Self-contained (``httpx`` only). When a decision comes back ``decision: false`` with
``context.reason == "approval_required"``, pass ``context.approval_request.id`` here; it
long-polls ``GET /v1/approvals/{id}/wait`` until a human decides, the request escalates to
its end, or ``timeout`` passes. Then retry the very same call: an approval is a one-time
grant for exactly that call.

    from warden.sdk.approvals import wait_for_approval

    outcome = wait_for_approval(request_id, timeout=300, token=task_credential)
    if outcome.approved:
        ...  # retry the identical call now, before outcome.approved_until

Authentication: the agent's own task credential (for requests of its task), an operator
token, or none when Warden is bound to loopback (PEP rules). ``base_url`` defaults to
``WARDEN_URL`` or ``http://127.0.0.1:8080``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = ["ApprovalError", "ApprovalOutcome", "ApprovalTimeoutError", "wait_for_approval"]

DEFAULT_URL = "http://127.0.0.1:8080"
PENDING = "pending"


class ApprovalError(Exception):
    """Warden could not be asked, or refused to say (``code`` is Warden's error code)."""

    def __init__(self, message: str, *, code: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class ApprovalTimeoutError(ApprovalError, TimeoutError):
    """Nobody decided within the timeout; the request may still be pending."""


@dataclass(frozen=True)
class ApprovalOutcome:
    request_id: str
    status: str  # approved, denied, expired or cancelled
    approved_until: str | None = None
    reason: str | None = None

    @property
    def approved(self) -> bool:
        return self.status == "approved"


def _status(body: dict[str, Any]) -> tuple[str, str | None, str | None]:
    """(status, approved_until, reason) from an operator view or a task handle."""
    if isinstance(body.get("task"), dict):
        result = body.get("result") or {}
        approval = result.get("approval") or {}
        return str(body["task"].get("status")), approval.get("approved_until"), result.get("reason")
    return (
        str(body.get("status")),
        None if body.get("grant_expires_at") is None else str(body["grant_expires_at"]),
        body.get("decision_reason"),
    )


def _error(response: httpx.Response) -> ApprovalError:
    try:
        err = response.json().get("error") or {}
    except ValueError:
        err = {}
    code = str(err.get("code", f"http_{response.status_code}"))
    message = str(err.get("message", response.text[:200]))
    return ApprovalError(f"{code}: {message}", code=code, status=response.status_code)


def wait_for_approval(
    request_id: str,
    timeout: float,
    *,
    base_url: str | None = None,
    token: str | None = None,
    poll: float = 25.0,
    client: httpx.Client | None = None,
) -> ApprovalOutcome:
    """Block until approval request ``request_id`` is decided (or raise on ``timeout`` s)."""
    if not request_id or "/" in request_id:
        raise ValueError("request_id must be an approval request id (apr_…)")
    url = (base_url or os.environ.get("WARDEN_URL") or DEFAULT_URL).rstrip("/")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    http = client or httpx.Client(timeout=poll + 10.0)
    deadline = time.monotonic() + max(0.0, timeout)
    backoff = 0.5
    try:
        while True:
            left = deadline - time.monotonic()
            try:
                response = http.get(
                    f"{url}/v1/approvals/{request_id}/wait",
                    params={"timeout": f"{max(0.0, min(poll, left)):.3f}"},
                    headers=headers,
                )
            except httpx.HTTPError as exc:
                if left <= 0:
                    raise ApprovalError(f"cannot reach warden at {url}: {exc}") from exc
                time.sleep(min(backoff, max(0.0, left)))
                backoff = min(backoff * 2, 10.0)
                continue
            if response.status_code in (429, 502, 503, 504) and left > 0:
                time.sleep(min(backoff, left))
                backoff = min(backoff * 2, 10.0)
                continue
            if response.status_code != 200:
                raise _error(response)
            status, until, reason = _status(response.json())
            if status != PENDING:
                return ApprovalOutcome(request_id, status, until, reason)
            if deadline - time.monotonic() <= 0:
                raise ApprovalTimeoutError(
                    f"approval request `{request_id}` is still pending after {timeout:g} s",
                    code="timeout",
                )
    finally:
        if client is None:
            http.close()
