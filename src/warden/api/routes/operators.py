"""Operator accounts: /v1/operators (admins). A token is shown once, at creation."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from warden.api.deps import operator, read_object, warden_of
from warden.api.errors import json_response
from warden.core.model import Operator, OperatorRole
from warden.errors import InvalidParameterError

router = APIRouter(prefix="/v1/operators", tags=["operators"])


def operator_view(op: Operator) -> dict[str, Any]:
    return {
        "id": op.id,
        "name": op.name,
        "role": op.role.value,
        "human": op.human,
        "created_at": op.created_at,
        "disabled": op.disabled,
    }


def _text(body: dict[str, Any], key: str, *, required: bool) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > 320:
        raise InvalidParameterError(
            f"`{key}` must be a non-empty string of at most 320 characters",
            detail={"field": key},
        )
    return value.strip()


@router.post("")
async def create(request: Request) -> Response:
    admin = await run_in_threadpool(operator, request, OperatorRole.ADMIN)
    body = await read_object(request)
    name = _text(body, "name", required=True)
    human = _text(body, "human", required=False)
    try:
        role = OperatorRole(body.get("role", OperatorRole.APPROVER.value))
    except ValueError:
        raise InvalidParameterError(
            "`role` must be admin, approver, auditor or pep", detail={"field": "role"}
        ) from None
    assert name is not None
    op, token = await run_in_threadpool(
        lambda: warden_of(request).operators.create(
            name, role, f"operator:{admin.name}", human=human
        )
    )
    return json_response({**operator_view(op), "token": token}, 201)


@router.get("")
async def list_operators(request: Request) -> Response:
    await run_in_threadpool(operator, request, OperatorRole.ADMIN)
    ops = await run_in_threadpool(warden_of(request).store.list_operators)
    return json_response({"operators": [operator_view(o) for o in ops]})
