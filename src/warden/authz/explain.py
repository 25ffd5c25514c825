"""``warden policies explain REQUEST.json``: why a request is decided the way it is.

The request file is one of: an AuthZEN evaluation request; a policy-test case
(``{request, warden, subject_parents}``, see ``cases.py``); or a recorded decision — an audit
record, or its ``data`` — whose ``cedar`` member is the request as Warden evaluated it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from warden.errors import InvalidParameterError

from .authzen import parse_evaluation, to_cedar
from .cases import parse_refs
from .pdp import PolicyDecisionPoint
from .policy_set import LoadedPolicySet
from .recording import request_from_record
from .types import AuthzRequest

__all__ = ["explain_file", "explain_request", "request_of"]


def request_of(doc: Any) -> AuthzRequest:
    """The Cedar request a REQUEST.json document stands for (see the module docstring)."""
    if not isinstance(doc, Mapping):
        raise InvalidParameterError("the request file must hold a JSON object")
    inner = doc.get("data")
    data: Mapping[str, Any] = inner if isinstance(inner, Mapping) else doc
    cedar = data.get("cedar")
    if isinstance(cedar, Mapping):
        try:
            return request_from_record(cedar)[0]
        except ValueError as exc:
            raise InvalidParameterError(str(exc)) from exc
    if "request" in doc:
        warden = doc.get("warden")
        if warden is not None and not isinstance(warden, Mapping):
            raise InvalidParameterError("`warden` must be an object")
        parents = tuple(parse_refs(doc.get("subject_parents") or []))
        return to_cedar(
            parse_evaluation(doc.get("request")),
            warden_context=dict(warden) if warden is not None else None,
            principal_parents=parents,
        )
    return to_cedar(parse_evaluation(doc))


def explain_request(lps: LoadedPolicySet, request: AuthzRequest) -> dict[str, Any]:
    ex = PolicyDecisionPoint(lps).explain(request)
    named = {*ex.considered, *ex.determining, *ex.overridden, *ex.monitored}
    return {
        "allowed": ex.decision.allowed,
        "revision": lps.revision,
        "request": {
            "principal": str(request.principal),
            "action": request.action,
            "resource": str(request.resource),
        },
        "determining": list(ex.determining),
        "overridden": list(ex.overridden),
        "monitored": list(ex.monitored),
        "errors": list(ex.decision.errors),
        "considered": list(ex.considered),
        "reads": dict(ex.reads),
        "policies": {
            pid: {
                "effect": lps.policies[pid].effect,
                "source": lps.policies[pid].source,
                "line": lps.policies[pid].line,
                "mode": lps.policies[pid].mode,
                "reads": sorted(lps.policies[pid].reads),
            }
            for pid in lps.policy_ids
            if pid in named
        },
    }


def explain_file(lps: LoadedPolicySet, path: Path | str) -> dict[str, Any]:
    file = Path(path)
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InvalidParameterError(f"cannot read `{file}`: {exc}") from exc
    return explain_request(lps, request_of(doc))
