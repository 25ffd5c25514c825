"""Step-up approvals: /v1/approvals (list, show, wait, approve, deny).

Who may call what:

* list — any operator; ``mine=true`` keeps the requests the caller may decide now;
* show and wait — an operator (full record), or the agent holding a live credential of the
  request's task, or a PEP (under the AuthZEN rules: unauthenticated on loopback, else an API
  key) — those two see the AuthZEN Access Request task handle only;
* approve and deny — operators with the approver (or admin) role whose linked person is an
  eligible approver. An agent credential is refused (``agent_cannot_approve``) and recorded.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from warden.api import sse
from warden.api.deps import (
    any_operator,
    authorization,
    dpop_header,
    operator_token,
    read_object,
    request_uri,
    require_pep,
    warden_of,
)
from warden.api.errors import json_response
from warden.api.paging import limit_of
from warden.core.governance import AuditQuery
from warden.core.model import ApprovalRequest, ApprovalStatus, AuditRecord, Operator, OperatorRole
from warden.errors import (
    AuthenticationError,
    InvalidParameterError,
    PermissionDeniedError,
    TokenInvalidError,
)
from warden.service.operators import TOKEN_PREFIX

router = APIRouter(prefix="/v1/approvals", tags=["approvals"])

MAX_WAIT = 60.0
POLL = 0.1
REFRESH = 1.0  # re-read the store this often while waiting (another replica may decide)


def _status(value: str | None) -> ApprovalStatus | None:
    if value is None:
        return None
    try:
        return ApprovalStatus(value)
    except ValueError:
        allowed = ", ".join(s.value for s in ApprovalStatus)
        raise InvalidParameterError(f"unknown status `{value[:40]}`: use {allowed}") from None


@router.get("")
async def list_approvals(request: Request) -> Response:
    op = await run_in_threadpool(any_operator, request)
    w = warden_of(request)
    q = request.query_params
    limit = limit_of(request)
    mine = q.get("mine", "").lower() in ("1", "true", "yes")
    status = _status(q.get("status")) or (ApprovalStatus.PENDING if mine else None)
    items = await run_in_threadpool(
        w.approvals.list, status=status, agent=q.get("agent"), after=q.get("after"), limit=limit
    )
    page_full = len(items) == limit
    if mine:
        items = [r for r in items if w.approvals.eligible(op, r) is None]
    return json_response(
        {
            "approvals": [w.approvals.view(r) for r in items],
            "next": items[-1].id if page_full and items else None,
        }
    )


def _approval_event(rec: AuditRecord) -> dict[str, Any]:
    """What an approvals stream tells any operator: which request changed, and how."""
    return {
        "seq": rec.seq,
        "type": rec.type,
        "request_id": rec.data.get("request_id"),
        "agent": rec.agent,
        "ts": rec.ts,
    }


@router.get("/stream")
async def stream(request: Request) -> Response:
    """Server-sent events, one per approval change (requested, approved, denied, escalated,
    expired, used): the console's inbox refreshes on them instead of polling."""
    await run_in_threadpool(any_operator, request)
    w = warden_of(request)
    cursor, _ = await sse.start_cursor(request, w, 0)
    return sse.stream(request, w, AuditQuery(type_prefix="approval."), cursor, _approval_event)


def _caller(request: Request) -> str | None:
    """Who is asking, established before anything is looked up (so a 404 reveals nothing to an
    unauthenticated caller): ``"operator"`` (full view), the task id of a task credential
    (its own task's requests only, as a task handle), or None for a PEP."""
    w = warden_of(request)
    token = operator_token(request)  # the bearer header, or the console session
    if token is not None and token.startswith(TOKEN_PREFIX):
        op = w.operators.authenticate(token)
        return "operator" if op.role is not OperatorRole.PEP else None
    auth = authorization(request)
    if auth is not None and auth[0] in ("bearer", "dpop"):
        try:
            w.credentials.verify_signature(auth[1])
        except TokenInvalidError:
            pass  # not one of ours: perhaps a PEP key
        else:
            # one of our credentials: live, and with its DPoP proof when it is bound
            cred = w.credentials.authenticate_agent(
                auth[1],
                scheme=auth[0],
                proof=dpop_header(request),
                method=request.method,
                uri=request_uri(request),
            )
            return f"task:{cred.task_id}"
    require_pep(request)
    return None


def _visible(caller: str | None, req: ApprovalRequest) -> bool:
    """True for the full view; a task credential sees only its own task's requests."""
    if caller is not None and caller.startswith("task:") and caller[5:] != req.task_id:
        raise PermissionDeniedError(
            "a task credential may only see its own task's approval requests"
        )
    return caller == "operator"


def _render(request: Request, req: ApprovalRequest, full: bool) -> dict[str, Any]:
    approvals = warden_of(request).approvals
    return approvals.view(req) if full else approvals.handle(req)


@router.get("/{request_id}")
async def show(request: Request, request_id: str) -> Response:
    w = warden_of(request)
    caller = await run_in_threadpool(_caller, request)
    req = await run_in_threadpool(w.approvals.get, request_id)
    return json_response(_render(request, req, _visible(caller, req)))


@router.get("/{request_id}/wait")
async def wait(request: Request, request_id: str) -> Response:
    """Long-poll: answers as soon as the request leaves ``pending``, or after ``timeout`` s."""
    w = warden_of(request)
    raw = request.query_params.get("timeout", "30")
    try:
        timeout = min(MAX_WAIT, max(0.0, float(raw)))
    except ValueError:
        raise InvalidParameterError("`timeout` must be a number of seconds") from None
    caller = await run_in_threadpool(_caller, request)
    req = await run_in_threadpool(w.approvals.get, request_id)
    full = _visible(caller, req)
    deadline = time.monotonic() + timeout
    next_refresh = time.monotonic() + REFRESH
    while req.status is ApprovalStatus.PENDING and time.monotonic() < deadline:
        if await request.is_disconnected():
            break
        await asyncio.sleep(POLL)
        if time.monotonic() >= next_refresh:
            next_refresh = time.monotonic() + REFRESH
            req = await run_in_threadpool(w.approvals.refresh, request_id)
        else:
            req = w.approvals.peek(request_id) or req
    headers = {"Retry-After": "1"} if req.status is ApprovalStatus.PENDING else None
    return json_response(_render(request, req, full), headers=headers)


async def _decide(request: Request, request_id: str, approve: bool) -> Response:
    w = warden_of(request)
    token = operator_token(request)
    if token is not None and not token.startswith(TOKEN_PREFIX):
        try:
            cred = await run_in_threadpool(w.credentials.verify_signature, token)
        except TokenInvalidError:
            raise AuthenticationError(
                "invalid token: deciding approvals needs an operator token"
            ) from None
        await run_in_threadpool(w.approvals.refuse_agent, request_id, cred.subject)
    op: Operator = await run_in_threadpool(any_operator, request)
    body = await read_object(request, allow_empty=True)
    reason = body.get("reason", "")
    if not isinstance(reason, str) or len(reason) > 1000:
        raise InvalidParameterError("`reason` must be a string of at most 1000 characters")
    if not approve and not reason.strip():
        raise InvalidParameterError("denying needs a `reason`", detail={"field": "reason"})
    digest = body.get("digest")
    if digest is not None and (not isinstance(digest, str) or len(digest) > 128):
        raise InvalidParameterError("`digest` must be the request's digest (hex)")
    decided = await run_in_threadpool(
        lambda: w.approvals.decide(
            request_id, op, approve=approve, reason=reason.strip(), digest=digest
        )
    )
    return json_response(w.approvals.view(decided))


async def _traced_decide(request: Request, request_id: str, approve: bool) -> Response:
    with warden_of(request).tracing.span(
        "warden.approval", {"warden.approval_id": request_id[:100], "warden.approve": approve}
    ):
        return await _decide(request, request_id, approve)


@router.post("/{request_id}/approve")
async def approve(request: Request, request_id: str) -> Response:
    return await _traced_decide(request, request_id, True)


@router.post("/{request_id}/deny")
async def deny(request: Request, request_id: str) -> Response:
    return await _traced_decide(request, request_id, False)
