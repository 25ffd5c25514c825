"""AuthZEN 1.0: evaluation, evaluations (batch), search, and PDP metadata."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from warden.api.deps import read_json, require_pep, warden_of
from warden.api.errors import json_response, request_id_of
from warden.api.observed import decide
from warden.authz.authzen import EvaluationInput, parse_evaluation, parse_evaluations, parse_search
from warden.errors import InvalidParameterError, MalformedRequestError
from warden.service.decisions import Outcome

router = APIRouter(tags=["authzen"])

SEMANTICS = ("execute_all", "deny_on_first_deny", "permit_on_first_permit")


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise MalformedRequestError("request body must be a json object")
    return body


@router.get("/.well-known/authzen-configuration")
async def configuration(request: Request) -> Response:
    base = warden_of(request).settings.effective_issuer
    return json_response(
        {
            "policy_decision_point": base,
            "access_evaluation_endpoint": f"{base}/access/v1/evaluation",
            "access_evaluations_endpoint": f"{base}/access/v1/evaluations",
            "search_subject_endpoint": f"{base}/access/v1/search/subject",
            "search_resource_endpoint": f"{base}/access/v1/search/resource",
            "search_action_endpoint": f"{base}/access/v1/search/action",
        }
    )


@router.post("/access/v1/evaluation")
async def evaluation(request: Request) -> Response:
    require_pep(request)
    ev = parse_evaluation(_object(await read_json(request)))
    w = warden_of(request)
    with w.auditor.deferred() as tickets:  # decided on the loop; the commit awaited off it
        out = _decide(request, ev, request_id_of(request), "evaluation")
    await w.writer.wait_async(tickets)  # answered only once recorded (ADR 0090)
    return json_response({"decision": out.allowed, "context": out.context})


def _decide(request: Request, ev: EvaluationInput, rid: str | None, endpoint: str) -> Outcome:
    return decide(warden_of(request), request.app.state.metrics, ev, rid, endpoint)


@router.post("/access/v1/evaluations")
async def evaluations(request: Request) -> Response:
    require_pep(request)
    body = _object(await read_json(request))
    w = warden_of(request)
    with w.auditor.deferred() as tickets:
        answer = _evaluations(request, body)
    await w.writer.wait_async(tickets)  # every decision of the batch recorded (ADR 0090)
    return json_response(answer)


def _evaluations(request: Request, body: dict[str, Any]) -> dict[str, Any]:
    rid = request_id_of(request)
    items = body.get("evaluations")
    if items is None or items == []:
        out = _decide(request, parse_evaluation(body), rid, "evaluations")
        return {"decision": out.allowed, "context": out.context}
    parsed, semantic = parse_evaluations(body)
    results: list[dict[str, Any]] = []
    for item in parsed:
        result: dict[str, Any]
        if not isinstance(item, InvalidParameterError):
            try:
                out = _decide(request, item, rid, "evaluations")
            except InvalidParameterError as exc:  # e.g. reserved_entity_type: that item alone
                item = exc
            else:
                result = {"decision": out.allowed, "context": out.context}
        if isinstance(item, InvalidParameterError):
            error = {"status": 400, "message": item.message}
            if item.code != InvalidParameterError.code:
                error["code"] = item.code
            # the decision shape every answer has (core/reasons.py), though nothing was decided
            context: dict[str, Any] = {
                "decision_id": None,
                "reason": "invalid_request",
                "reasons": [],
            }
            result = {"decision": False, "context": {**context, "error": error}}
        results.append(result)
        if semantic == "deny_on_first_deny" and not result["decision"]:
            break
        if semantic == "permit_on_first_permit" and result["decision"]:
            break
    return {"evaluations": results}


@router.post("/access/v1/search/subject")
async def search_subject(request: Request) -> Response:
    return await _search(request, "subject")


@router.post("/access/v1/search/resource")
async def search_resource(request: Request) -> Response:
    return await _search(request, "resource")


@router.post("/access/v1/search/action")
async def search_action(request: Request) -> Response:
    return await _search(request, "action")


async def _search(request: Request, kind: str) -> Response:
    require_pep(request)
    query = parse_search(_object(await read_json(request)), kind)
    results = warden_of(request).decisions.search(query)
    return json_response({"page": {"next_token": ""}, "results": results})
