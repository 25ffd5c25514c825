"""Data-driven policy tests (``warden policies test DIR CASES``).

A cases file is YAML or JSON::

    cases:
      - name: reader may read
        request:                       # an AuthZEN access evaluation request
          subject: {type: Agent, id: "spiffe://example.org/agent/reader"}
          action: {name: read_file}
          resource: {type: Tool, id: read_file}
          context: {arguments: {path: /tmp/x}}
        warden: {task: {category: research}}   # optional: the server-derived context.warden
        subject_parents: [{type: Group, id: readers}]  # optional: principal parents
        expect: allow                  # allow | deny
        reasons: [reader-read]         # optional: ids that must be among the determining ones
        monitored: [risky-write]       # optional: ids that must be among the monitored ones

Requests go through the same AuthZEN parsing and mapping as the evaluation endpoint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from warden.errors import InvalidParameterError, PolicyEvaluationError, ToolMismatchError

from .authzen import parse_evaluation, to_cedar
from .pdp import PolicyDecisionPoint
from .policy_set import LoadedPolicySet, load_policy_dir
from .types import EntityRef

__all__ = ["CaseResult", "load_cases", "parse_refs", "run_cases", "run_loaded_cases", "unexercised"]

_EXPECT = ("allow", "deny")


@dataclass(frozen=True, slots=True)
class CaseResult:
    name: str
    passed: bool
    expected: str
    actual: str  # "allow" | "deny" | "error"
    reasons: tuple[str, ...]
    message: str = ""
    # determining, overridden and monitored policies (coverage; not part of the verdict)
    matched: tuple[str, ...] = field(default=(), compare=False)


def load_cases(path: Path | str) -> list[dict[str, Any]]:
    """Read a cases file; raise ``InvalidParameterError`` when its shape is wrong."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidParameterError(f"cannot read cases file `{file}`: {exc}") from exc
    try:
        doc = json.loads(text) if file.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        problem = " ".join(str(exc).split())
        raise InvalidParameterError(f"`{file.name}`: cannot parse cases: {problem}") from exc
    cases = doc.get("cases") if isinstance(doc, dict) else None
    if not isinstance(cases, list):
        raise InvalidParameterError(f"`{file.name}`: expected an object with a `cases` list")
    for index, case in enumerate(cases):
        if not isinstance(case, dict):
            raise InvalidParameterError(f"`{file.name}`: case {index} must be an object")
    return cases


def run_cases(policy_dir: Path | str, cases_file: Path | str) -> list[CaseResult]:
    """Load a policy folder (``PolicyError`` if invalid) and run every case against it."""
    loaded = load_policy_dir(policy_dir)
    return run_loaded_cases(loaded, load_cases(cases_file))


def run_loaded_cases(loaded: LoadedPolicySet, cases: list[dict[str, Any]]) -> list[CaseResult]:
    pdp = PolicyDecisionPoint(loaded)
    return [_run_one(pdp, index, case) for index, case in enumerate(cases)]


def _run_one(pdp: PolicyDecisionPoint, index: int, case: dict[str, Any]) -> CaseResult:
    name = str(case.get("name") or f"case {index}")
    expected = case.get("expect")
    if expected not in _EXPECT:
        return CaseResult(
            name, False, str(expected), "error", (), "`expect` must be `allow` or `deny`"
        )
    try:
        evaluation = parse_evaluation(case.get("request"))
        warden = case.get("warden")
        if warden is not None and not isinstance(warden, dict):
            raise InvalidParameterError("`warden` must be an object")
        parents = tuple(parse_refs(case.get("subject_parents") or []))
        request = to_cedar(evaluation, warden_context=warden, principal_parents=parents)
        explanation = pdp.explain(request)
        decision = explanation.decision
    except (InvalidParameterError, PolicyEvaluationError, ToolMismatchError) as exc:
        return CaseResult(name, False, expected, "error", (), exc.message)
    actual = "allow" if decision.allowed else "deny"
    problems: list[str] = []
    if actual != expected:
        problems.append(f"expected {expected}, got {actual}")
    for key, have in (("reasons", decision.reasons), ("monitored", decision.monitored)):
        wanted = case.get(key) or []
        missing = [str(w) for w in wanted if w not in have]
        if missing:
            listed = ", ".join(f"`{m}`" for m in missing)
            problems.append(f"{key} missing {listed}")
    if decision.errors:
        problems_text = "; ".join(decision.errors)
        if actual != expected:
            problems.append(f"errors: {problems_text}")
    matched = (*decision.reasons, *explanation.overridden, *decision.monitored)
    return CaseResult(
        name, not problems, expected, actual, decision.reasons, "; ".join(problems), matched
    )


def unexercised(loaded: LoadedPolicySet, results: list[CaseResult]) -> list[str]:
    """Policies (templates aside) that no case matched: untested, whatever they do."""
    hit = {pid for r in results for pid in r.matched}
    return [
        pid for pid in loaded.policy_ids if pid not in hit and not loaded.policies[pid].template
    ]


def parse_refs(value: Any) -> list[EntityRef]:
    if not isinstance(value, list):
        raise InvalidParameterError("`subject_parents` must be a list")
    refs = []
    for item in value:
        if not (
            isinstance(item, dict)
            and isinstance(item.get("type"), str)
            and isinstance(item.get("id"), str)
        ):
            raise InvalidParameterError(
                "each of `subject_parents` must have a string `type` and `id`"
            )
        refs.append(EntityRef(item["type"], item["id"]))
    return refs
