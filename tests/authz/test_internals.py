"""Edge paths of the adapter, value checks and store queries."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from warden.authz import _cedar
from warden.authz.pdp import PolicyDecisionPoint
from warden.authz.policy_set import check_value, encode_context, load_policy_dir
from warden.authz.types import AuthzRequest, EntityRef
from warden.authz.watcher import PolicyWatcher
from warden.errors import PolicyError, PolicyEvaluationError

from .conftest import WriteDir, entity

MakePdp = Callable[..., PolicyDecisionPoint]
U = EntityRef


def test_adapter_translates_cedarpy_errors() -> None:
    with pytest.raises(_cedar.CedarError):
        _cedar.policy_set_from_est_json("{not json")
    with pytest.raises(_cedar.CedarError):
        _cedar.schema_from_json("[]")
    base = _cedar.entities_from_json(
        '[{"uid": {"type": "A", "id": "a"}, "attrs": {}, "parents": []}]'
    )
    with pytest.raises(_cedar.CedarError, match="duplicate"):
        _cedar.entities_with_added(
            base, '[{"uid": {"type": "A", "id": "a"}, "attrs": {"x": 1}, "parents": []}]'
        )
    ps = _cedar.policy_set_from_est({})
    bad = {
        "principal": {"type": "A"},
        "action": {"type": "Action", "id": "a"},
        "resource": {},
        "context": "{}",
    }
    for call in (_cedar.authorize, _cedar.authorize_public):
        with pytest.raises(_cedar.CedarError):
            call(bad, ps, base)
    with pytest.raises(_cedar.CedarError):
        _cedar.authorize_batch([bad], ps, base)


def test_public_and_fast_paths_agree_on_raw_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    ps = _cedar.policy_set_from_est(
        _cedar.policies_to_est('@id("x") permit(principal, action, resource) when { context.a };')[
            "staticPolicies"
        ]
    )
    ents = _cedar.entities_from_json("[]")
    request = {
        "principal": {"type": "A", "id": "a"},
        "action": {"type": "Action", "id": "a"},
        "resource": {"type": "A", "id": "a"},
        "context": '{"a": true}',
    }
    fast = _cedar.authorize(request, ps, ents)
    assert fast == _cedar.authorize_public(request, ps, ents)
    monkeypatch.setattr(_cedar, "_BATCH", None)
    assert _cedar.authorize(request, ps, ents) == fast
    assert _cedar.authorize_batch([request, request], ps, ents) == [fast, fast]


def test_check_value_edges() -> None:
    check_value("plain", "x")
    check_value(True, "x")
    check_value({"s": {1, 2}, "f": frozenset({"a"}), "t": ("a", 1)}, "context")
    deep: list[Any] = []
    for _ in range(40):
        deep = [deep]
    with pytest.raises(PolicyEvaluationError, match="nested deeper than 32"):
        check_value(deep, "context")
    with pytest.raises(PolicyEvaluationError) as err:
        check_value({"a": [{"b": 1.0}]}, "context")
    assert err.value.detail == {"field": "context.a[0].b"}
    assert encode_context({"s": frozenset({"a"})}) == '{"s":["a"]}'
    with pytest.raises(PolicyEvaluationError, match="must be a record"):
        encode_context(["not", "a", "record"])  # type: ignore[arg-type]


def test_attributes_beyond_unsigned_64_bit_deny(make_pdp: MakePdp) -> None:
    pdp = make_pdp("permit(principal, action, resource);")
    for kw in ({"principal_attrs": {"n": 2**65}}, {"resource_attrs": {"n": -(2**65)}}):
        r = AuthzRequest(principal=U("User", "u"), action="a", resource=U("Doc", "d"), **kw)
        decision = pdp.evaluate(r)
        assert not decision.allowed and "64-bit" in decision.errors[0]
    r = AuthzRequest(
        principal=U("User", "u"), principal_attrs={1: "x"}, action="a", resource=U("Doc", "d")
    )
    decision = pdp.evaluate(r)
    assert not decision.allowed and "keys must be strings" in decision.errors[0]


def test_store_queries(write_dir: WriteDir) -> None:
    folder = write_dir(
        {
            "p.cedar": (
                '@id("a: b") forbid(principal, action, resource) when { context.x };\n'
                '@id("a") permit(principal, action, resource);'
            ),
            "entities.json": [
                entity("G", "g", parents=[("G", "root")]),
                entity("G", "root"),
                entity("U", "u", parents=[("G", "g")]),
            ],
        }
    )
    lps = load_policy_dir(folder)
    assert lps.has_entity(U("U", "u")) and not lps.has_entity(U("U", "x"))
    assert lps.ancestors(U("U", "u")) == {("G", "g"), ("G", "root")}
    assert lps.ancestors(U("U", "x")) == frozenset()
    assert lps.entity_ids("G") == ("g", "root")
    assert lps.errored_policy("error while evaluating policy `a: b`: `x` oops") == "a: b"
    assert lps.errored_policy("error while evaluating policy `zzz`: oops") is None
    assert lps.errored_policy("something else") is None
    decision = PolicyDecisionPoint(lps).evaluate(
        AuthzRequest(principal=U("U", "u"), action="a", resource=U("D", "d"))
    )
    assert not decision.allowed and decision.reasons == ("a: b",)


def test_monitor_reevaluation_failures_deny(
    make_pdp: MakePdp, monkeypatch: pytest.MonkeyPatch
) -> None:
    pdp = make_pdp(
        '@id("p") permit(principal, action, resource);\n'
        '@id("m") @mode("monitor") forbid(principal, action, resource);'
    )
    r = AuthzRequest(principal=U("U", "u"), action="a", resource=U("D", "d"))
    calls: list[int] = []

    def second_call_fails(*_: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            return ("Deny", ["m"], [])
        raise _cedar.CedarError("gone")

    monkeypatch.setattr(_cedar, "authorize", second_call_fails)
    decision = pdp.evaluate(r)
    assert not decision.allowed and decision.monitored == ("m",)
    assert decision.errors == ("policy evaluation failed: gone",)

    answers = iter([("Deny", ["m"], []), ("Allow", ["p"], ["mystery"])])
    monkeypatch.setattr(_cedar, "authorize", lambda *_: next(answers))
    decision = pdp.evaluate(r)
    assert not decision.allowed and decision.reasons == () and decision.errors == ("mystery",)


def test_entity_file_errors_name_entities_only_when_possible(write_dir: WriteDir) -> None:
    folder = write_dir({"entities.json": [{"uid": "not an object"}]})
    with pytest.raises(PolicyError) as err:
        load_policy_dir(folder)
    assert "(entity" not in err.value.message


def test_watcher_reports_unexpected_failures(
    write_dir: WriteDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    import warden.authz.watcher as watcher_module

    def broken(_: Path) -> Any:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(watcher_module, "load_policy_dir", broken)
    errors: list[Exception] = []
    watcher = PolicyWatcher(
        write_dir({"p.cedar": ""}), PolicyDecisionPoint(), on_error=errors.append
    )
    assert watcher.check_now() is None
    assert isinstance(errors[0], PolicyError) and "disk on fire" in str(errors[0])


def test_entity_ref_display() -> None:
    assert str(U("User", 'a"b\\c')) == 'User::"a\\"b\\\\c"'
