"""MCP tool pins: ``/v1/mcp/pins`` (operators) and ``/v1/mcp/observe`` (the MCP proxy, a PEP).

``POST /v1/mcp/pins`` ``{server, tools: [definitions], only?: [names]}`` approves definitions
(admins; what ``warden mcp pin`` sends). ``GET /v1/mcp/pins?server=`` lists them with any changed
definition seen since and its diff. ``DELETE /v1/mcp/pins/{server}/{tool}`` forgets one.
``POST /v1/mcp/observe`` ``{server, tools, mode, agent?}`` is what a proxy reports after each
``tools/list`` of an upstream; it answers ``{verdicts: {tool: pinned|changed|unpinned}}``.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from warden.api.deps import any_operator, operator, read_object, require_pep, warden_of
from warden.api.errors import json_response
from warden.core.model import OperatorRole
from warden.errors import InvalidParameterError
from warden.service.pins import pins_view

router = APIRouter(prefix="/v1/mcp", tags=["mcp"])


@router.get("/pins")
async def list_pins(request: Request) -> Response:
    await run_in_threadpool(any_operator, request)
    server = request.query_params.get("server")
    pins = await run_in_threadpool(warden_of(request).pins.list_pins, server)
    return json_response({"pins": pins_view(pins)})


@router.post("/pins")
async def pin(request: Request) -> Response:
    op = await run_in_threadpool(operator, request, OperatorRole.ADMIN)
    body = await read_object(request)
    unknown = set(body) - {"server", "tools", "only"}
    if unknown:
        raise InvalidParameterError(f"unknown field `{sorted(unknown)[0]}`")
    only = body.get("only")
    if only is not None and (
        not isinstance(only, list) or not all(isinstance(n, str) for n in only)
    ):
        raise InvalidParameterError("`only` must be a list of tool names")
    pinned = await run_in_threadpool(
        lambda: warden_of(request).pins.pin(
            body.get("server"), body.get("tools"), actor=f"operator:{op.name}", only=only
        )
    )
    return json_response({"server": body["server"], "pinned": pinned})


@router.delete("/pins/{server}/{tool}")
async def unpin(request: Request, server: str, tool: str) -> Response:
    op = await run_in_threadpool(operator, request, OperatorRole.ADMIN)
    await run_in_threadpool(
        lambda: warden_of(request).pins.unpin(server, tool, actor=f"operator:{op.name}")
    )
    return Response(status_code=204)


@router.post("/observe")
async def observe(request: Request) -> Response:
    require_pep(request)
    body = await read_object(request)
    unknown = set(body) - {"server", "tools", "mode", "agent"}
    if unknown:
        raise InvalidParameterError(f"unknown field `{sorted(unknown)[0]}`")
    mode = body.get("mode", "enforce")
    spiffe_id = body.get("agent")
    if not isinstance(mode, str) or (spiffe_id is not None and not isinstance(spiffe_id, str)):
        raise InvalidParameterError("`mode` and `agent` must be strings")
    w = warden_of(request)
    # the agent whose session saw the tools, for the finding (a name, when registered)
    known = w.state.agents_by_spiffe.get(spiffe_id) if spiffe_id else None
    agent = known.name if known is not None else None
    verdicts = await run_in_threadpool(
        lambda: w.pins.observe(
            body.get("server"), body.get("tools"), mode=mode, actor="pep", agent=agent
        )
    )
    return json_response({"verdicts": verdicts})
