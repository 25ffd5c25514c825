"""An in-process ``post(path, body)`` over the PDP, for the conformance runner.

It does what the AuthZEN endpoints do with the decision layer (parse, map, evaluate,
apply the batch semantic, search), without HTTP: a malformed request raises
``RequestRejectedError(400)`` where the endpoint would answer 400.
"""

from __future__ import annotations

from typing import Any

from warden.authz.authzen import (
    evaluate_items,
    parse_evaluation,
    parse_evaluations,
    parse_search,
    run_search,
    to_cedar,
)
from warden.authz.pdp import PolicyDecisionPoint
from warden.authz.types import Decision
from warden.errors import InvalidParameterError

from .authzen_runner import EVALUATION, EVALUATIONS, SEARCH, Post, RequestRejectedError


def _render(result: Decision | Exception) -> dict[str, Any]:
    if isinstance(result, Decision):
        return {"decision": result.allowed, "context": {"reasons": list(result.reasons)}}
    status = 400 if isinstance(result, InvalidParameterError) else 500
    return {"decision": False, "context": {"error": {"status": status, "message": str(result)}}}


def make_post(pdp: PolicyDecisionPoint) -> Post:
    def post(path: str, body: Any) -> dict[str, Any]:
        try:
            if path == EVALUATION:
                return _render(pdp.evaluate(to_cedar(parse_evaluation(body))))
            if path == EVALUATIONS:
                items, semantic = parse_evaluations(body)
                if not items:
                    return _render(pdp.evaluate(to_cedar(parse_evaluation(body))))
                return {"evaluations": [_render(r) for r in evaluate_items(pdp, items, semantic)]}
            if path.startswith(SEARCH):
                search = parse_search(body, path.removeprefix(SEARCH))
                return {"page": {"next_token": ""}, "results": run_search(pdp, search)}
        except InvalidParameterError as exc:
            raise RequestRejectedError(400, exc.message) from exc
        raise RequestRejectedError(404, path)

    return post
