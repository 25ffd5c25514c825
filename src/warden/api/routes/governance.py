"""Governance: owners (/v1/owners), agent ownership and lifecycle (/v1/agents/{name}/owners,
/v1/agents/{name}/governance), certification campaigns (/v1/certifications) and the controls
report (/v1/reports/controls)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from warden.api.deps import any_operator, operator, read_object, warden_of
from warden.api.errors import json_response
from warden.api.paging import float_param, limit_of
from warden.core.governance import TimeoutAction, parse_duration
from warden.core.model import HumanStatus, OperatorRole
from warden.errors import InvalidParameterError
from warden.evidence.render import render
from warden.service.certification import campaign_view, review_view

router = APIRouter(tags=["governance"])

REPORT_TYPES = {
    "json": "application/json",
    "md": "text/markdown; charset=utf-8",
    "html": "text/html; charset=utf-8",
}


def _human(h: Any) -> dict[str, Any]:
    return {
        "id": h.id,
        "status": h.status.value,
        "display_name": h.display_name,
        "created_at": h.created_at,
    }


def _reason(body: dict[str, Any]) -> str:
    reason = body.get("reason", "")
    if not isinstance(reason, str) or len(reason) > 1000:
        raise InvalidParameterError("`reason` must be a string of at most 1000 characters")
    return reason


# -- owners ---------------------------------------------------------------------------------------


@router.get("/v1/owners")
async def list_owners(request: Request) -> Response:
    await run_in_threadpool(any_operator, request)
    status = request.query_params.get("status")
    if status is not None and status not in {s.value for s in HumanStatus}:
        raise InvalidParameterError(f"unknown status `{status}`")
    limit = limit_of(request)
    humans = await run_in_threadpool(
        warden_of(request).ownership.list_owners,
        status=HumanStatus(status) if status else None,
        after=request.query_params.get("after"),
        limit=limit,
    )
    return json_response(
        {
            "owners": [_human(h) for h in humans],
            "next": humans[-1].id if len(humans) == limit else None,
        }
    )


@router.post("/v1/owners")
async def add_owner(request: Request) -> Response:
    op = await run_in_threadpool(operator, request)
    body = await read_object(request)
    name = body.get("display_name", "")
    if not isinstance(name, str):
        raise InvalidParameterError("`display_name` must be a string")
    human = await run_in_threadpool(
        warden_of(request).ownership.add_owner, body.get("id"), name, f"operator:{op.name}"
    )
    return json_response(_human(human), 201)


@router.post("/v1/owners/sync")
async def sync_owners(request: Request) -> Response:
    op = await run_in_threadpool(operator, request)
    body = await read_object(request)
    entries = body.get("humans")
    if not isinstance(entries, list):
        raise InvalidParameterError("`humans` must be a list of {id, status} objects")
    full = body.get("full", False)
    if not isinstance(full, bool):
        raise InvalidParameterError("`full` must be true or false")
    result = await run_in_threadpool(
        lambda: warden_of(request).ownership.sync(entries, f"operator:{op.name}", full=full)
    )
    return json_response(result)


@router.get("/v1/owners/{human_id}")
async def show_owner(request: Request, human_id: str) -> Response:
    await run_in_threadpool(any_operator, request)
    w = warden_of(request)
    human = await run_in_threadpool(w.ownership.get_owner, human_id)
    agents = await run_in_threadpool(w.store.agents_owned_by, human_id)
    return json_response({**_human(human), "agents": agents})


@router.post("/v1/owners/{human_id}/deactivate")
async def deactivate_owner(request: Request, human_id: str) -> Response:
    op = await run_in_threadpool(operator, request)
    reason = _reason(await read_object(request, allow_empty=True))
    result = await run_in_threadpool(
        warden_of(request).ownership.deactivate, human_id, f"operator:{op.name}", reason
    )
    return json_response(result)


@router.post("/v1/owners/{human_id}/reactivate")
async def reactivate_owner(request: Request, human_id: str) -> Response:
    op = await run_in_threadpool(operator, request)
    reason = _reason(await read_object(request, allow_empty=True))
    result = await run_in_threadpool(
        warden_of(request).ownership.reactivate, human_id, f"operator:{op.name}", reason
    )
    return json_response(result)


# -- agent ownership and lifecycle ----------------------------------------------------------------


@router.get("/v1/agents/{name}/governance")
async def agent_governance(request: Request, name: str) -> Response:
    await run_in_threadpool(any_operator, request)
    return json_response(await run_in_threadpool(warden_of(request).ownership.describe, name))


@router.patch("/v1/agents/{name}/governance")
async def update_agent_governance(request: Request, name: str) -> Response:
    op = await run_in_threadpool(operator, request)
    body = await read_object(request)
    unknown = set(body) - {"end_date"}
    if unknown or "end_date" not in body:
        raise InvalidParameterError("send `end_date` (epoch seconds, or null to clear it)")
    view = await run_in_threadpool(
        warden_of(request).ownership.set_end_date, name, body["end_date"], f"operator:{op.name}"
    )
    return json_response(view)


@router.post("/v1/agents/{name}/owners")
async def transfer(request: Request, name: str) -> Response:
    op = await run_in_threadpool(operator, request)
    body = await read_object(request)
    view = await run_in_threadpool(
        warden_of(request).ownership.transfer,
        name,
        body.get("owners"),
        f"operator:{op.name}",
        _reason(body),
    )
    return json_response(view)


# -- certification ------------------------------------------------------------------------------


@router.post("/v1/certifications")
async def start_campaign(request: Request) -> Response:
    op = await run_in_threadpool(operator, request)
    body = await read_object(request, allow_empty=True)
    every = parse_duration(body["every"], "every") if body.get("every") is not None else None
    window = parse_duration(body["window"], "window") if body.get("window") is not None else None
    on_timeout = body.get("on_timeout")
    if on_timeout is not None and on_timeout not in {t.value for t in TimeoutAction}:
        raise InvalidParameterError("`on_timeout` must be reduce or suspend")
    campaign, reviews = await run_in_threadpool(
        lambda: warden_of(request).certification.start(
            f"operator:{op.name}",
            every=every,
            window=window,
            on_timeout=TimeoutAction(on_timeout) if on_timeout else None,
        )
    )
    return json_response(campaign_view(campaign, reviews), 201)


@router.get("/v1/certifications")
async def list_campaigns(request: Request) -> Response:
    await run_in_threadpool(any_operator, request)
    campaigns = await run_in_threadpool(
        warden_of(request).store.list_campaigns, limit=limit_of(request)
    )
    return json_response({"campaigns": [campaign_view(c) for c in campaigns]})


@router.get("/v1/certifications/reviews/{review_id}")
async def show_review(request: Request, review_id: str) -> Response:
    await run_in_threadpool(any_operator, request)
    review = await run_in_threadpool(warden_of(request).store.fetch_review, review_id)
    return json_response(review_view(review))


@router.post("/v1/certifications/reviews/{review_id}/{decision}")
async def decide_review(request: Request, review_id: str, decision: str) -> Response:
    op = await run_in_threadpool(operator, request, OperatorRole.APPROVER)
    body = await read_object(request, allow_empty=True)
    review = await run_in_threadpool(
        lambda: warden_of(request).certification.decide(
            review_id, decision, op, entitlements=body.get("entitlements")
        )
    )
    return json_response(review_view(review))


@router.get("/v1/certifications/{campaign_id}")
async def show_campaign(request: Request, campaign_id: str) -> Response:
    await run_in_threadpool(any_operator, request)
    w = warden_of(request)
    campaign = await run_in_threadpool(w.store.fetch_campaign, campaign_id)
    reviews = await run_in_threadpool(lambda: w.store.list_reviews(campaign_id=campaign_id))
    return json_response(campaign_view(campaign, reviews))


@router.post("/v1/certifications/{campaign_id}/close")
async def close_campaign(request: Request, campaign_id: str) -> Response:
    op = await run_in_threadpool(operator, request)
    w = warden_of(request)
    campaign = await run_in_threadpool(w.certification.close, campaign_id, f"operator:{op.name}")
    reviews = await run_in_threadpool(lambda: w.store.list_reviews(campaign_id=campaign_id))
    return json_response(campaign_view(campaign, reviews))


# -- evidence -------------------------------------------------------------------------------------


@router.get("/v1/reports/controls")
async def controls_report(request: Request) -> Response:
    await run_in_threadpool(operator, request, OperatorRole.AUDITOR)
    w = warden_of(request)
    fmt = request.query_params.get("format", "json")
    if fmt not in REPORT_TYPES:
        raise InvalidParameterError("`format` must be html, md or json")
    now = w.clock.now()
    start = float_param(request, "from")
    end = float_param(request, "to")
    report = await run_in_threadpool(
        w.controls_report, now - 30 * 86400 if start is None else start, now if end is None else end
    )
    if fmt == "json":
        return json_response(report)
    return Response(render(report, fmt), media_type=REPORT_TYPES[fmt])
