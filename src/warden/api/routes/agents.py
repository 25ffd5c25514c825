"""Agent inventory: /v1/agents (operators only)."""

from __future__ import annotations

import time

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from warden.api.deps import any_operator, operator, read_object, warden_of
from warden.api.errors import json_response
from warden.api.paging import limit_of
from warden.attestation.join_token import TOKEN_TYPE_JOIN_TOKEN
from warden.behaviour import parse_declared
from warden.core.model import AgentStatus
from warden.errors import InvalidParameterError
from warden.service.agents import agent_view
from warden.service.entries import entry_view
from warden.service.outage import OUTAGE_ERRORS

router = APIRouter(prefix="/v1/agents", tags=["agents"])


@router.post("")
async def register(request: Request) -> Response:
    op = await run_in_threadpool(operator, request)
    body = await read_object(request)
    w = warden_of(request)
    baseline = body.pop("baseline", None)
    if baseline is not None:
        parse_declared(baseline)  # a bad baseline refuses the registration before any write
    manifest = body.pop("manifest", None)
    if manifest is not None:
        w.manifests.parse(manifest)  # likewise a bad manifest declaration
    agent = await run_in_threadpool(w.agents.register, body, f"operator:{op.name}")
    view = agent_view(agent)
    if baseline is not None:
        declared = await run_in_threadpool(
            w.behaviour.set_declared, agent, baseline, f"operator:{op.name}"
        )
        view["baseline"] = declared["declared"]
    if manifest is not None:
        view["manifest"] = await run_in_threadpool(
            w.manifests.declare, agent, manifest, actor=f"operator:{op.name}"
        )
    return json_response(view, 201)


@router.get("/{name}/manifest")
async def show_manifest(request: Request, name: str) -> Response:
    await run_in_threadpool(any_operator, request)
    w = warden_of(request)
    agent = await run_in_threadpool(w.agents.get, name)
    return json_response(await run_in_threadpool(w.manifests.view, agent.name))


@router.put("/{name}/manifest")
async def declare_manifest(request: Request, name: str) -> Response:
    """Declare (or replace) what the agent may run; later token exchanges are checked."""
    op = await run_in_threadpool(operator, request)
    body = await read_object(request)
    w = warden_of(request)
    agent = await run_in_threadpool(w.agents.get, name)
    declared = await run_in_threadpool(
        w.manifests.declare, agent, body, actor=f"operator:{op.name}"
    )
    return json_response(declared)


@router.delete("/{name}/manifest")
async def clear_manifest(request: Request, name: str) -> Response:
    op = await run_in_threadpool(operator, request)
    w = warden_of(request)
    agent = await run_in_threadpool(w.agents.get, name)
    await run_in_threadpool(w.manifests.clear, agent, actor=f"operator:{op.name}")
    return Response(status_code=204)


@router.get("")
async def list_agents(request: Request) -> Response:
    await run_in_threadpool(any_operator, request)
    q = request.query_params
    status = q.get("status")
    if status is not None and status not in {s.value for s in AgentStatus}:
        raise InvalidParameterError(f"unknown status `{status}`")
    limit = limit_of(request)
    agents = await run_in_threadpool(
        warden_of(request).agents.list,
        status=AgentStatus(status) if status else None,
        owner=q.get("owner"),
        after=q.get("after"),
        limit=limit,
    )
    return json_response(
        {
            "agents": [agent_view(a) for a in agents],
            "next": agents[-1].name if len(agents) == limit else None,
        }
    )


@router.get("/{name}")
async def show(request: Request, name: str) -> Response:
    await run_in_threadpool(any_operator, request)
    agent = await run_in_threadpool(warden_of(request).agents.get, name)
    return json_response(agent_view(agent))


@router.patch("/{name}")
async def update(request: Request, name: str) -> Response:
    op = await run_in_threadpool(operator, request)
    body = await read_object(request)
    agent = await run_in_threadpool(
        warden_of(request).agents.update, name, body, f"operator:{op.name}"
    )
    return json_response(agent_view(agent))


async def _reason(request: Request) -> str:
    body = await read_object(request, allow_empty=True)
    reason = body.get("reason", "")
    if not isinstance(reason, str) or len(reason) > 1000:
        raise InvalidParameterError("`reason` must be a string of at most 1000 characters")
    return reason


@router.post("/{name}/suspend")
async def suspend(request: Request, name: str) -> Response:
    op = await run_in_threadpool(operator, request)
    reason = await _reason(request)
    w = warden_of(request)
    started = time.perf_counter()
    try:
        agent, cascade = await run_in_threadpool(
            w.agents.suspend, name, f"operator:{op.name}", reason
        )
    except OUTAGE_ERRORS as exc:  # the database is down: in force here, journaled (ADR 0093)
        pending = await run_in_threadpool(
            w.outage.suspend_agent, name, actor=f"operator:{op.name}", reason=reason, error=exc
        )
        return json_response(pending, 202)
    took_ms = round((time.perf_counter() - started) * 1000, 2)
    return json_response(
        {
            **agent_view(agent),
            "tasks_ended": cascade.tasks,
            "leases": {"revoked": cascade.leases_revoked, "pending": cascade.leases_pending},
            "cascade_ms": took_ms,
            "replica": w.replication.replica_id,
        }
    )


@router.post("/{name}/reactivate")
async def reactivate(request: Request, name: str) -> Response:
    op = await run_in_threadpool(operator, request)
    reason = await _reason(request)
    agent = await run_in_threadpool(
        warden_of(request).agents.reactivate, name, f"operator:{op.name}", reason
    )
    return json_response(agent_view(agent))


@router.post("/{name}/decommission")
async def decommission(request: Request, name: str) -> Response:
    op = await run_in_threadpool(operator, request)
    reason = await _reason(request)
    agent, cascade = await run_in_threadpool(
        warden_of(request).agents.decommission, name, f"operator:{op.name}", reason
    )
    return json_response(
        {
            **agent_view(agent),
            "tasks_ended": cascade.tasks,
            "leases": {"revoked": cascade.leases_revoked, "pending": cascade.leases_pending},
        }
    )


# -- registration entries and join tokens ---------------------------------------------------


@router.get("/{name}/entries")
async def list_entries(request: Request, name: str) -> Response:
    await run_in_threadpool(any_operator, request)
    entries = await run_in_threadpool(warden_of(request).entries.list, name)
    return json_response({"entries": [entry_view(e) for e in entries]})


@router.post("/{name}/entries")
async def add_entry(request: Request, name: str) -> Response:
    op = await run_in_threadpool(operator, request)
    body = await read_object(request)
    entry = await run_in_threadpool(
        warden_of(request).entries.add, name, body, f"operator:{op.name}"
    )
    return json_response(entry_view(entry), 201)


@router.delete("/{name}/entries/{entry_id}")
async def remove_entry(request: Request, name: str, entry_id: str) -> Response:
    op = await run_in_threadpool(operator, request)
    entry = await run_in_threadpool(
        warden_of(request).entries.remove, name, entry_id, f"operator:{op.name}"
    )
    return json_response(entry_view(entry))


@router.post("/{name}/join-tokens")
async def create_join_token(request: Request, name: str) -> Response:
    op = await run_in_threadpool(operator, request)
    body = await read_object(request, allow_empty=True)
    record, token = await run_in_threadpool(
        warden_of(request).join_tokens.create, name, body.get("ttl"), f"operator:{op.name}"
    )
    return json_response(
        {
            "id": record.id,
            "agent": record.agent_name,
            "token": token,
            "token_type": TOKEN_TYPE_JOIN_TOKEN,
            "expires_at": record.expires_at,
        },
        201,
        headers={"Cache-Control": "no-store"},
    )
