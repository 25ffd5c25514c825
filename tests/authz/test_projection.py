"""Cedar gets only what the policies can read of ``context.warden`` (ADR 0140), and decides
exactly as it would on the full record."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from warden.authz import _cedar
from warden.authz import pdp as pdp_module
from warden.authz.pdp import PolicyDecisionPoint
from warden.authz.projection import merge, project, warden_reads
from warden.authz.types import AuthzRequest, EntityRef

from .conftest import load


def reads_of(policy: str) -> Any:
    (body,) = _cedar.policies_to_est(policy)["staticPolicies"].values()
    return warden_reads(body)


def when(condition: str) -> str:
    return f"permit (principal, action, resource) when {{ {condition} }};"


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ('context.warden.task.category == "x"', {"task": {"category": None}}),
        ('context.warden.scope.contains("a")', {"scope": None}),
        # a `has` test needs the key where it is, not its contents
        ("context has warden.task.on_behalf_of", {"task": {"on_behalf_of": {}}}),
        ("context has warden", {}),
        # a record compared or handed on as a value is kept whole
        ('context.warden.task == {"id": "t"}', {"task": None}),
        ('context.warden.task == {"id": "t"} && context.warden.task.id == "t"', {"task": None}),
        ("{a: context.warden}.a.depth == 1", None),
        # the context as a value: everything
        ("(if context has x then context else context).warden.depth == 1", None),
        ("context has arguments && context.arguments has to", {}),
        ("principal has owner && principal.owner == context.warden.owner", {"owner": None}),
    ],
)
def test_what_a_policy_can_read(condition: str, expected: Any) -> None:
    assert reads_of(when(condition)) == expected


def test_reads_merge_and_project() -> None:
    a = reads_of(when('context.warden.task.id == "t"'))
    b = reads_of(when("context has warden.task.on_behalf_of && context.warden.depth > 0"))
    both = merge([a, b])
    assert both == {"task": {"id": None, "on_behalf_of": {}}, "depth": None}
    assert merge([a, reads_of(when("{a: context.warden}.a.depth == 1"))]) is None
    full = {
        "arguments": {"x": 1},
        "warden": {
            "task": {"id": "t", "purpose": "p", "on_behalf_of": "u"},
            "depth": 1,
            "attestation": {"method": "k8s", "selectors": ["a", "b"]},
        },
    }
    assert project(full, both) == {
        "arguments": {"x": 1},
        "warden": {"task": {"id": "t", "on_behalf_of": "u"}, "depth": 1},
    }
    assert project(full, None) is full
    assert project(full, {}) == {"arguments": {"x": 1}, "warden": {}}
    assert full["warden"]["attestation"]  # the caller's record is left alone


# --------------------------------------------------------------------------- equivalence

# Policies over the fields of context.warden, each read a different way; every subset is a set.
POOL = (
    '@id("cat") permit (principal, action, resource) when '
    '{ context.warden.task.category == "support" };',
    '@id("obo") forbid (principal, action == Action::"b", resource) when '
    "{ context.warden has task.on_behalf_of };",
    '@id("admin") forbid (principal, action, resource) when '
    '{ context.warden.scope.contains("admin") };',
    '@id("owner") permit (principal, action == Action::"b", resource) when '
    '{ context.warden.depth < 2 && context.warden.owner like "*@example.com" };',
    '@id("prod") forbid (principal, action, resource) when '
    '{ context.warden.attestation.selectors.contains("ns:prod") };',
    '@id("whole-task") permit (principal, action, resource) when '
    '{ context.warden.task == {"id": "t1", "purpose": "p", "category": "c", "age": 5} };',
    '@id("granted") @mode("monitor") forbid (principal, action, resource) when '
    "{ context.warden.approval.granted };",
    '@id("score") forbid (principal, action == Action::"a", resource) when '
    "{ context has warden.behaviour && context.warden.behaviour.score > 50 };",
    '@id("old") forbid (principal, action, resource) unless { context.warden.task.age < 100 };',
    '@id("any") permit (principal, action, resource) when '
    '{ (if context.warden.depth > 0 then context else context).warden.chain.contains("root") };',
)

_loaded: dict[tuple[int, ...], PolicyDecisionPoint] = {}


def pdp_for(chosen: tuple[int, ...], tmp: Path) -> PolicyDecisionPoint:
    found = _loaded.get(chosen)
    if found is None:
        folder = tmp / ("set-" + "-".join(map(str, chosen)))
        folder.mkdir(exist_ok=True)
        text = "\n".join(POOL[i] for i in chosen) or "// nothing"
        (folder / "policies.cedar").write_text(text)
        found = _loaded[chosen] = PolicyDecisionPoint(load(folder))
    return found


@contextmanager
def full_context() -> Iterator[None]:
    """Evaluate with the whole record, as before projection existed (the reference)."""
    original: Callable[..., Any] = pdp_module.project
    pdp_module.project = lambda context, reads: context  # type: ignore[assignment]
    try:
        yield
    finally:
        pdp_module.project = original  # type: ignore[assignment]


def _maybe(draw: Any, key: str, value: Any, into: dict[str, Any]) -> None:
    if draw(st.integers(0, 5)):  # mostly there; sometimes missing (reads then error)
        into[key] = value


@st.composite
def warden_records(draw: Any) -> dict[str, Any]:
    task: dict[str, Any] = {}
    _maybe(draw, "id", draw(st.sampled_from(["t1", "t2"])), task)
    _maybe(draw, "purpose", "p", task)
    _maybe(draw, "category", draw(st.sampled_from(["support", "c", "ops"])), task)
    _maybe(draw, "age", draw(st.sampled_from([5, 50, 500])), task)
    if draw(st.booleans()):
        task["on_behalf_of"] = "user@example.com"
    record: dict[str, Any] = {"now": 1_700_000_000}
    _maybe(draw, "task", task, record)
    _maybe(draw, "scope", draw(st.lists(st.sampled_from(["admin", "a", "b"]), unique=True)), record)
    _maybe(draw, "chain", draw(st.lists(st.sampled_from(["root", "x"]), unique=True)), record)
    # a wrong type sometimes: the same error either way
    _maybe(draw, "depth", draw(st.sampled_from([0, 1, 3, "deep"])), record)
    _maybe(draw, "owner", draw(st.sampled_from(["a@example.com", "b@evil.test"])), record)
    _maybe(draw, "approval", {"granted": draw(st.booleans())}, record)
    _maybe(draw, "behaviour", draw(st.sampled_from([{}, {"score": 10}, {"score": 90}])), record)
    selectors = draw(st.lists(st.sampled_from(["ns:prod", "ns:dev"]), unique=True))
    _maybe(draw, "attestation", {"method": "k8s", "selectors": selectors}, record)
    _maybe(draw, "manifest", {"name": "m", "tools": ["a", "b"]}, record)
    return record


def outcome(decision: Any) -> tuple[Any, ...]:
    # Cedar lists reasons in hash order; errors name the policy and may quote the record
    return (
        decision.allowed,
        frozenset(decision.reasons),
        frozenset(decision.monitored),
        len(decision.errors),
    )


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    chosen=st.lists(st.integers(0, len(POOL) - 1), unique=True).map(lambda xs: tuple(sorted(xs))),
    record=warden_records(),
    action=st.sampled_from(["a", "b"]),
    arguments=st.sampled_from([None, {"n": 1}]),
)
def test_every_set_decides_as_on_the_full_record(
    tmp_path_factory: pytest.TempPathFactory,
    chosen: tuple[int, ...],
    record: dict[str, Any],
    action: str,
    arguments: Any,
) -> None:
    """Turning any policy on or off never changes a decision against the full context."""
    pdp = pdp_for(chosen, tmp_path_factory.getbasetemp())
    context: dict[str, Any] = {"warden": record}
    if arguments is not None:
        context["arguments"] = arguments
    request = AuthzRequest(
        principal=EntityRef("Agent", "spiffe://x/a"),
        action=action,
        resource=EntityRef("Tool", action),
        context=context,
    )
    before = orjson.dumps(request.context)
    cut = pdp.evaluate(request)
    with full_context():
        whole = pdp.evaluate(request)
    assert orjson.dumps(request.context) == before  # the request itself is never cut
    assert outcome(cut) == outcome(whole)
    assert outcome(pdp.evaluate_batch([request])[0]) == outcome(cut)


def test_cedar_sees_only_what_the_slice_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What actually reaches Cedar: the fields the slice reads, and nothing of the rest."""
    (tmp_path / "p.cedar").write_text(POOL[0] + "\n" + POOL[1])
    pdp = PolicyDecisionPoint(load(tmp_path))
    sent: list[str] = []
    real = _cedar.authorize

    def spy(request: dict[str, Any], *args: Any) -> Any:
        sent.append(request["context"])
        return real(request, *args)

    monkeypatch.setattr(pdp_module._cedar, "authorize", spy)
    record = {
        "task": {"id": "t", "category": "support", "on_behalf_of": "u"},
        "attestation": {"method": "k8s", "selectors": ["ns:prod"]},
        "scope": ["a"],
    }
    for action, want in (("a", {"task": {"category": "support"}}), ("b", None)):
        request = AuthzRequest(
            principal=EntityRef("Agent", "a"),
            action=action,
            resource=EntityRef("Tool", action),
            context={"warden": record, "arguments": {"x": 1}},
        )
        pdp.evaluate(request)
        got = orjson.loads(sent[-1])
        assert got["arguments"] == {"x": 1}
        if want is not None:
            assert got["warden"] == want
        else:  # `obo` is in this slice: the has-test key, present as in the full record
            assert got["warden"] == {"task": {"category": "support", "on_behalf_of": "u"}}
