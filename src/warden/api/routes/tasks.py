"""Tasks: /v1/tasks. Operators see all; an agent may end its own task with its own credential."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from warden.api.deps import any_operator, bearer, read_object, warden_of
from warden.api.errors import json_response
from warden.api.paging import limit_of
from warden.core.model import OperatorRole, TaskStatus
from warden.errors import AuthenticationError, InvalidParameterError, PermissionDeniedError
from warden.service.operators import TOKEN_PREFIX
from warden.service.tasks import task_view

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


def _caller_for_task(request: Request, task_id: str) -> str:
    """An admin operator, or the agent holding a live credential for exactly this task."""
    token = bearer(request)
    w = warden_of(request)
    if token is None:
        raise AuthenticationError("an operator token or the task's credential is required")
    if token.startswith(TOKEN_PREFIX):
        op = w.operators.authenticate(token)
        w.operators.require(op, OperatorRole.ADMIN)
        return f"operator:{op.name}"
    cred = w.tasks.verify_live(token)
    if cred.task_id != task_id:
        raise PermissionDeniedError("a task credential may only end its own task")
    return cred.subject


async def _end(request: Request, task_id: str, status: TaskStatus) -> Response:
    actor = await run_in_threadpool(_caller_for_task, request, task_id)
    body = await read_object(request, allow_empty=True)
    reason = body.get("reason", "")
    if not isinstance(reason, str) or len(reason) > 1000:
        raise InvalidParameterError("`reason` must be a string of at most 1000 characters")
    task = await run_in_threadpool(
        warden_of(request).tasks.end, task_id, status, actor=actor, reason=reason
    )
    return json_response(task_view(task))


@router.post("/{task_id}/complete")
async def complete(request: Request, task_id: str) -> Response:
    return await _end(request, task_id, TaskStatus.COMPLETED)


@router.post("/{task_id}/fail")
async def fail(request: Request, task_id: str) -> Response:
    return await _end(request, task_id, TaskStatus.FAILED)


@router.post("/{task_id}/revoke")
async def revoke(request: Request, task_id: str) -> Response:
    return await _end(request, task_id, TaskStatus.REVOKED)
