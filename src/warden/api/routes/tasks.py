"""Tasks: /v1/tasks. Operators see all; an agent may end its own task, and ask for (and list) leases
for it, with its own credential (``Authorization: Bearer``, or ``DPoP`` plus a proof when bound)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from warden.api.deps import (
    SESSION_COOKIE,
    any_operator,
    authorization,
    dpop_header,
    read_object,
    request_uri,
    warden_of,
)
from warden.api.errors import json_response
from warden.api.paging import limit_of
from warden.core.model import OperatorRole, TaskStatus
from warden.errors import AuthenticationError, InvalidParameterError, PermissionDeniedError
from warden.service.leases import Caller, lease_view
from warden.service.operators import TOKEN_PREFIX
from warden.service.outage import OUTAGE_ERRORS
from warden.service.tasks import Ended, task_view

router = APIRouter(prefix="/v1/tasks", tags=["tasks"])


@router.get("")
async def list_tasks(request: Request) -> Response:
    await run_in_threadpool(any_operator, request)
    q = request.query_params
    status = q.get("status")
    if status is not None and status not in {s.value for s in TaskStatus}:
        raise InvalidParameterError(f"unknown status `{status}`")
    limit = limit_of(request)
    tasks = await run_in_threadpool(
        warden_of(request).store.list_tasks,
        agent=q.get("agent"),
        status=TaskStatus(status) if status else None,
        after=q.get("after"),
        limit=limit,
    )
    return json_response(
        {
            "tasks": [task_view(t) for t in tasks],
            "next": tasks[-1].id if len(tasks) == limit else None,
        }
    )


@router.get("/{task_id}")
async def show(request: Request, task_id: str) -> Response:
    await run_in_threadpool(any_operator, request)
    task = await run_in_threadpool(warden_of(request).store.fetch_task, task_id)
    return json_response(task_view(task))


def _caller_for_task(request: Request, task_id: str) -> Caller:
    """An admin operator, or the agent holding a live credential for exactly this task."""
    auth = authorization(request)
    w = warden_of(request)
    if auth is None or auth[0] not in ("bearer", "dpop"):
        raise AuthenticationError("an operator token or the task's credential is required")
    scheme, token = auth
    if scheme == "bearer" and token.startswith(TOKEN_PREFIX):
        op = w.operators.authenticate(token)
        w.operators.require(op, OperatorRole.ADMIN)
        return Caller(f"operator:{op.name}", None)
    cred = w.credentials.authenticate_agent(
        token,
        scheme=scheme,
        proof=dpop_header(request),
        method=request.method,
        uri=request_uri(request),
    )
    if cred.task_id != task_id:
        raise PermissionDeniedError("a task credential may only act on its own task")
    return Caller(cred.subject, frozenset(cred.scope), cred.jkt)


def ended_view(ended: Ended) -> dict[str, Any]:
    """The ended task, the subtasks that ended with it, and what happened to their leases."""
    leases = ended.reports.get("leases") or {}
    return {
        **task_view(ended.task),
        "ended_subtasks": [t.id for t in ended.subtasks],
        "revoked_credentials": len(ended.revoked),
        "leases": {
            "revoked": leases.get("revoked", []),
            # not confirmed gone yet: the reaper keeps retrying (GET …/leases shows progress)
            "pending": leases.get("pending", []),
        },
    }


async def _end(request: Request, task_id: str, status: TaskStatus) -> Response:
    caller = await run_in_threadpool(_caller_for_task, request, task_id)
    body = await read_object(request, allow_empty=True)
    reason = body.get("reason", "")
    if not isinstance(reason, str) or len(reason) > 1000:
        raise InvalidParameterError("`reason` must be a string of at most 1000 characters")
    w = warden_of(request)
    try:
        ended = await run_in_threadpool(
            w.tasks.end_tree, task_id, status, actor=caller.actor, reason=reason
        )
    except OUTAGE_ERRORS as exc:  # the database is down: in force here, journaled (ADR 0093)
        pending = await run_in_threadpool(
            w.outage.end_task, task_id, status, actor=caller.actor, reason=reason, error=exc
        )
        return json_response(pending, 202)
    return json_response(ended_view(ended))


@router.post("/{task_id}/complete")
async def complete(request: Request, task_id: str) -> Response:
    return await _end(request, task_id, TaskStatus.COMPLETED)


@router.post("/{task_id}/fail")
async def fail(request: Request, task_id: str) -> Response:
    return await _end(request, task_id, TaskStatus.FAILED)


@router.post("/{task_id}/revoke")
async def revoke(request: Request, task_id: str) -> Response:
    return await _end(request, task_id, TaskStatus.REVOKED)


@router.get("/{task_id}/subtasks")
async def subtasks(request: Request, task_id: str) -> Response:
    await run_in_threadpool(any_operator, request)
    w = warden_of(request)
    await run_in_threadpool(w.store.fetch_task, task_id)
    children = await run_in_threadpool(w.store.list_child_tasks, task_id)
    return json_response({"tasks": [task_view(t) for t in children]})


@router.post("/{task_id}/leases")
async def create_lease(request: Request, task_id: str) -> Response:
    caller = await run_in_threadpool(_caller_for_task, request, task_id)
    body = await read_object(request)
    lease = await run_in_threadpool(warden_of(request).leases.create, task_id, body, caller)
    return json_response(lease, 201, headers={"Cache-Control": "no-store"})


def _reader_for_task(request: Request, task_id: str) -> None:
    """Any operator, or the agent holding a live credential for exactly this task."""
    auth = authorization(request)
    console = auth is None and SESSION_COOKIE in request.cookies
    if console or (auth is not None and auth[0] == "bearer" and auth[1].startswith(TOKEN_PREFIX)):
        any_operator(request)
        return
    _caller_for_task(request, task_id)


@router.get("/{task_id}/leases")
async def list_leases(request: Request, task_id: str) -> Response:
    await run_in_threadpool(_reader_for_task, request, task_id)
    leases = await run_in_threadpool(warden_of(request).leases.list_for_task, task_id)
    return json_response({"leases": [lease_view(lease) for lease in leases]})
