"""Evaluation: entity merging, value conversion, fail-closed rules, monitor mode."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from warden.authz import _cedar
from warden.authz.pdp import PolicyDecisionPoint
from warden.authz.types import AuthzRequest, Decision, EntityRef
from warden.errors import PolicyEvaluationError

from .conftest import entity

MakePdp = Callable[..., PolicyDecisionPoint]
U = EntityRef


def req(
    principal: str = "alice", action: str = "read", resource: str = "doc", **kw: Any
) -> AuthzRequest:
    kw.setdefault("context", {})
    return AuthzRequest(
        principal=U("User", principal), action=action, resource=U("Doc", resource), **kw
    )


# --------------------------------------------------------------------------- entities


STORE = [
    entity("Group", "staff", parents=[("Group", "everyone")]),
    entity("Group", "everyone"),
    entity("User", "alice", {"role": "viewer"}, [("Group", "staff")]),
    entity("Doc", "doc", {"status": "active"}),
]


def test_store_wins_on_conflicting_attributes(make_pdp: MakePdp) -> None:
    pdp = make_pdp('permit(principal, action, resource) when { principal.role == "admin" };', STORE)
    assert not pdp.evaluate(req(principal_attrs={"role": "admin"})).allowed
    assert pdp.evaluate(req("bob", principal_attrs={"role": "admin"})).allowed


def test_request_properties_add_new_attributes(make_pdp: MakePdp) -> None:
    pdp = make_pdp(
        'permit(principal, action, resource) when { principal.role == "viewer" '
        '&& principal.dept == "x" '
        '&& resource.status == "active" && resource.size == 3 };',
        STORE,
    )
    decision = pdp.evaluate(
        req(
            principal_attrs={"dept": "x", "role": "admin"},
            resource_attrs={"size": 3, "status": "gone"},
        )
    )
    assert decision.allowed, decision
    assert not pdp.evaluate(req(principal_attrs={"dept": "y"}, resource_attrs={"size": 3})).allowed


def test_unknown_entities_take_request_properties(make_pdp: MakePdp) -> None:
    pdp = make_pdp(
        "permit(principal, action, resource) when { principal.level > 2 && resource.open };", STORE
    )
    assert pdp.evaluate(
        req("carol", resource="other", principal_attrs={"level": 3}, resource_attrs={"open": True})
    ).allowed
    assert not pdp.evaluate(
        req("carol", resource="other", principal_attrs={"level": 1}, resource_attrs={"open": True})
    ).allowed


def test_same_entity_as_principal_and_resource(make_pdp: MakePdp) -> None:
    pdp = make_pdp(
        "permit(principal, action, resource) when "
        "{ principal.a == 1 && resource.b == 2 && principal == resource };"
    )
    r = AuthzRequest(
        principal=U("User", "x"),
        principal_attrs={"a": 1},
        action="read",
        resource=U("User", "x"),
        resource_attrs={"b": 2},
        context={},
    )
    assert pdp.evaluate(r).allowed


def test_parents_from_store_are_transitive(make_pdp: MakePdp) -> None:
    pdp = make_pdp('permit(principal in Group::"everyone", action, resource);', STORE)
    assert pdp.evaluate(req("alice")).allowed
    assert not pdp.evaluate(req("bob")).allowed
    # request parents, for a principal outside the store and one inside it
    assert pdp.evaluate(req("bob", principal_parents=(U("Group", "staff"),))).allowed
    pdp2 = make_pdp(
        'permit(principal in Group::"ops", action, resource);', [*STORE, entity("Group", "ops")]
    )
    assert not pdp2.evaluate(req("alice")).allowed
    assert pdp2.evaluate(req("alice", principal_parents=(U("Group", "ops"),))).allowed
    assert pdp2.evaluate(
        req("alice", principal_attrs={"new": 1}, principal_parents=(U("Group", "ops"),))
    ).allowed


def test_agent_principal_deltas_are_cached(make_pdp: MakePdp) -> None:
    pdp = make_pdp(
        'permit(principal in Group::"staff", action, resource) when { principal.owner == "bob" };',
        STORE,
    )
    agent = U("Agent", "spiffe://example.org/agent/a")
    attrs = {
        "owner": "bob",
        "risk_tier": "low",
        "purpose": "p",
        "status": "active",
        "trust_domain": "example.org",
        "name": "a",
    }
    r = AuthzRequest(
        principal=agent,
        principal_attrs=attrs,
        principal_parents=(U("Group", "staff"),),
        action="read",
        resource=U("Tool", "t"),
        context={},
    )
    lps = pdp.policy_set
    assert lps is not None
    first = lps.entities_for(agent, attrs, r.principal_parents, r.resource, None)
    second = lps.entities_for(agent, dict(attrs), r.principal_parents, r.resource, None)
    assert first is second
    assert (
        lps.entities_for(U("User", "alice"), {"role": "x"}, (), U("Doc", "doc"), {"status": "y"})
        is lps.entities
    )
    assert pdp.evaluate(r).allowed


# --------------------------------------------------------------------------- values


ALLOW_ALL = "permit(principal, action, resource);"


@pytest.mark.parametrize(
    ("context", "where", "problem"),
    [
        ({"amount": 1.5}, "context.amount", "floating-point"),
        ({"a": {"b": [1, None]}}, "context.a.b[1]", "null"),
        ({"n": 2**63}, "context.n", "64-bit"),
        ({"n": -(2**63) - 1}, "context.n", "64-bit"),
        ({"n": [2**64]}, "context.n[0]", "64-bit"),
        ({1: "x"}, "context", "keys must be strings"),
        ({"o": object()}, "context.o", "cannot be represented"),
    ],
)
def test_unsupported_context_values_deny(
    make_pdp: MakePdp, context: dict[Any, Any], where: str, problem: str
) -> None:
    decision = make_pdp(ALLOW_ALL).evaluate(req(context=context))
    assert not decision.allowed
    assert decision.reasons == ()
    assert len(decision.errors) == 1
    assert f"`{where}`" in decision.errors[0] and problem in decision.errors[0]


@pytest.mark.parametrize("bad", [1.5, None, 2**64, {"deep": [0.25]}])
def test_a_bad_value_in_the_server_record_still_denies(make_pdp: MakePdp, bad: Any) -> None:
    """``warden`` is server-built and not re-checked on every decision; Cedar still refuses it
    when a policy reads it (a part no policy reads is never sent: ADR 0140)."""
    reads_it = 'permit (principal, action, resource) when { context.warden.owner == "a" };'
    decision = make_pdp(reads_it).evaluate(req(context={"warden": {"owner": bad}}))
    assert not decision.allowed
    assert decision.errors


def _nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"x": value}
    return value


def test_nesting_limit(make_pdp: MakePdp) -> None:
    pdp = make_pdp(ALLOW_ALL)
    assert pdp.evaluate(req(context=_nested(32))).allowed  # the context itself is level 1
    decision = pdp.evaluate(req(context=_nested(33)))
    assert not decision.allowed and "nested deeper than 32" in decision.errors[0]
    decision = pdp.evaluate(req(principal_attrs=_nested(40)))
    assert not decision.allowed and "nested deeper than 32" in decision.errors[0]


def test_good_values_reach_cedar(make_pdp: MakePdp) -> None:
    pdp = make_pdp(
        "permit(principal, action, resource) when { context.n == -9223372036854775808 "
        "&& context.s.contains(2) "
        '&& context.r.k == "v" && context.b && context.e == Doc::"d" && context.ip.isLoopback() };'
    )
    ctx = {
        "n": -(2**63),
        "s": [1, 2, 2],
        "r": {"k": "v"},
        "b": True,
        "e": {"__entity": {"type": "Doc", "id": "d"}},
        "ip": {"__extn": {"fn": "ip", "arg": "127.0.0.1"}},
    }
    assert pdp.evaluate(req(context=ctx)).allowed
    # sets, tuples and mappings from Python callers are accepted too
    from types import MappingProxyType

    ctx2 = {**ctx, "s": (1, 2), "r": MappingProxyType({"k": "v"})}
    assert pdp.evaluate(req(context=MappingProxyType(ctx2))).allowed


@pytest.mark.parametrize("attrs", [{"a": 1.0}, {"a": None}, {"a": {"b": 2**70}}])
def test_unsupported_attribute_values_deny(make_pdp: MakePdp, attrs: dict[str, Any]) -> None:
    pdp = make_pdp(ALLOW_ALL)
    for decision in (
        pdp.evaluate(req("new", principal_attrs=attrs)),
        pdp.evaluate(req(resource="new", resource_attrs=attrs)),
    ):
        assert not decision.allowed
        assert "unsupported value at `" in decision.errors[0]


@pytest.mark.parametrize(
    "type_name", ["", "in", "a-b", "1a", "A::", "A::in", "Ü", "A B", '"User"', 'User::"x"']
)
def test_invalid_type_names_deny(make_pdp: MakePdp, type_name: str) -> None:
    pdp = make_pdp(ALLOW_ALL)
    for r in (
        AuthzRequest(principal=U(type_name, "x"), action="a", resource=U("R", "r")),
        AuthzRequest(principal=U("P", "x"), action="a", resource=U(type_name, "r")),
        AuthzRequest(
            principal=U("P", "x"),
            principal_parents=(U(type_name, "g"),),
            action="a",
            resource=U("R", "r"),
        ),
    ):
        decision = pdp.evaluate(r)
        assert not decision.allowed and decision.errors


@pytest.mark.parametrize(
    "type_name", ["A::B", "_x", "Agent", "record", "Acme::Docs::File", "principal"]
)
def test_valid_type_names(make_pdp: MakePdp, type_name: str) -> None:
    r = AuthzRequest(principal=U(type_name, "x"), action="a", resource=U(type_name, "r"))
    assert make_pdp(ALLOW_ALL).evaluate(r).allowed


# --------------------------------------------------------------------------- injection

INJECTIONS = [
    'alice" || true || "',
    'alice"',
    "alice\n",
    'User::"alice"',
    'alice") when { true }; permit(principal, action, resource',
    "alice\\",
    "alice::x",
    'x" } || principal == User::"alice',
]


@pytest.mark.parametrize("bad", INJECTIONS)
def test_injected_ids_never_change_a_decision(make_pdp: MakePdp, bad: str) -> None:
    pdp = make_pdp(
        """
        permit(principal == User::"alice", action == Action::"read", resource == Doc::"doc");
        forbid(principal, action, resource) when { principal has blocked };
        """,
        [entity("User", "alice"), entity("User", bad, {"blocked": True})],
    )
    assert pdp.evaluate(req()).allowed  # control
    for r in (
        req(principal=bad),
        req(action=bad.replace("alice", "read")),
        req(resource=bad.replace("alice", "doc")),
        req("carol", principal_parents=(U("User", bad),)),
        req("mallory", principal_attrs={"name": bad, bad: bad}),
    ):
        assert not pdp.evaluate(r).allowed, r


def test_injected_id_stays_one_entity(make_pdp: MakePdp) -> None:
    bad = 'x"}, {"uid": {"type": "User", "id": "alice"}, "attrs": {"admin": true}'
    pdp = make_pdp(
        "permit(principal, action, resource) when { principal has admin && principal.admin };",
        [entity("User", "alice")],
    )
    assert not pdp.evaluate(req(bad, principal_attrs={"k": bad})).allowed
    assert not pdp.evaluate(req("alice")).allowed


# --------------------------------------------------------------------------- fail closed


def test_erroring_forbid_denies(make_pdp: MakePdp) -> None:
    pdp = make_pdp(
        """
        @id("allow") permit(principal, action, resource);
        @id("limit") forbid(principal, action, resource) when { context.amount > 500 };
        """
    )
    assert pdp.evaluate(req(context={"amount": 5})).allowed
    assert not pdp.evaluate(req(context={"amount": 501})).allowed
    for ctx in ({}, {"amount": "lots"}):
        decision = pdp.evaluate(req(context=ctx))
        assert not decision.allowed
        assert decision.reasons == ("limit",)
        assert decision.errors and "`limit`" in decision.errors[0]


def test_erroring_permit_is_just_skipped(make_pdp: MakePdp) -> None:
    pdp = make_pdp(
        """
        @id("fragile") permit(principal, action, resource) when { context.missing };
        @id("solid") permit(principal, action, resource);
        """
    )
    decision = pdp.evaluate(req())
    assert decision.allowed and decision.reasons == ("solid",)
    assert len(decision.errors) == 1 and "`fragile`" in decision.errors[0]


def test_default_deny_has_no_reasons(make_pdp: MakePdp) -> None:
    decision = make_pdp('permit(principal, action == Action::"write", resource);').evaluate(req())
    assert decision == Decision(False, (), (), decision.policy_revision)


def test_cedar_failures_deny(make_pdp: MakePdp, monkeypatch: pytest.MonkeyPatch) -> None:
    pdp = make_pdp(ALLOW_ALL)

    def boom(*_: Any) -> Any:
        raise _cedar.CedarError("engine exploded")

    monkeypatch.setattr(_cedar, "authorize", boom)
    monkeypatch.setattr(_cedar, "authorize_batch", boom)
    decision = pdp.evaluate(req())
    assert not decision.allowed and decision.errors == (
        "policy evaluation failed: engine exploded",
    )
    assert [d.allowed for d in pdp.evaluate_batch([req(), req()])] == [False, False]


def test_request_cedar_cannot_build_denies(
    make_pdp: MakePdp, monkeypatch: pytest.MonkeyPatch
) -> None:
    import warden.authz.pdp as pdp_module

    pdp = make_pdp(ALLOW_ALL)
    monkeypatch.setattr(pdp_module, "encode_context", lambda _ctx: '{"x": null}')
    decision = pdp.evaluate(req())
    assert not decision.allowed and "null" in decision.errors[0]


def test_unattributable_errors_fail_closed(
    make_pdp: MakePdp, monkeypatch: pytest.MonkeyPatch
) -> None:
    pdp = make_pdp('@id("p") permit(principal, action, resource);')
    monkeypatch.setattr(
        _cedar, "authorize", lambda *_: ("Allow", ["p"], ["something new went wrong"])
    )
    decision = pdp.evaluate(req())
    assert not decision.allowed and decision.errors == ("something new went wrong",)


def test_no_active_policy_set_raises() -> None:
    pdp = PolicyDecisionPoint()
    assert pdp.revision is None and pdp.policy_set is None
    with pytest.raises(PolicyEvaluationError, match="no active policy set"):
        pdp.evaluate(req())
    with pytest.raises(PolicyEvaluationError):
        pdp.evaluate_batch([req()])
    with pytest.raises(PolicyEvaluationError):
        pdp.search_actions(U("User", "a"), None, U("Doc", "d"), None, {})


def test_activate_swaps_the_set(make_pdp: MakePdp) -> None:
    allow = make_pdp(ALLOW_ALL)
    deny = make_pdp("forbid(principal, action, resource);")
    assert deny.policy_set is not None and allow.revision != deny.revision
    assert allow.evaluate(req()).allowed
    allow.activate(deny.policy_set)
    decision = allow.evaluate(req())
    assert not decision.allowed and decision.policy_revision == deny.revision


# --------------------------------------------------------------------------- monitor mode

MONITORED = """
@id("allow") permit(principal, action, resource);
@id("watch") @mode("monitor") @approval("owner")
forbid(principal, action == Action::"delete", resource);
@id("guard") forbid(principal, action, resource) when { context has hard && context.hard };
@id("watch-error") @mode("monitor")
forbid(principal, action == Action::"share", resource) when { context.missing };
"""


def test_monitor_forbid_is_reported_not_enforced(make_pdp: MakePdp) -> None:
    pdp = make_pdp(MONITORED)
    decision = pdp.evaluate(req(action="delete"))
    assert decision.allowed
    assert decision.reasons == ("allow",)
    assert decision.monitored == ("watch",)
    assert decision.annotations["watch"]["approval"] == "owner"
    assert set(decision.annotations) == {"allow", "watch"}
    assert pdp.evaluate(req(action="delete")) == decision  # cached variant, same answer


def test_monitor_with_enforced_forbid_still_denies(make_pdp: MakePdp) -> None:
    decision = make_pdp(MONITORED).evaluate(req(action="delete", context={"hard": True}))
    assert not decision.allowed
    assert decision.reasons == ("guard",)
    assert decision.monitored == ("watch",)


def test_monitor_without_permit_is_a_default_deny(make_pdp: MakePdp) -> None:
    pdp = make_pdp(
        '@id("w") @mode("monitor") forbid(principal, action, resource);\n'
        '@id("p") permit(principal, action == Action::"x", resource);'
    )
    decision = pdp.evaluate(req())
    assert not decision.allowed and decision.reasons == () and decision.monitored == ("w",)
    assert pdp.evaluate(req(action="x")).allowed


def test_erroring_monitor_forbid_is_monitored(make_pdp: MakePdp) -> None:
    decision = make_pdp(MONITORED).evaluate(req(action="share"))
    assert decision.allowed
    assert decision.monitored == ("watch-error",)
    assert decision.errors


def test_monitor_reevaluation_respects_erroring_guards(
    make_pdp: MakePdp, monkeypatch: pytest.MonkeyPatch
) -> None:
    pdp = make_pdp(MONITORED)
    answers = iter(
        [
            ("Deny", ["watch"], []),
            ("Allow", ["allow"], ["error while evaluating policy `guard`: boom"]),
        ]
    )
    monkeypatch.setattr(_cedar, "authorize", lambda *_: next(answers))
    decision = pdp.evaluate(req(action="delete"))
    assert (
        not decision.allowed and decision.reasons == ("guard",) and decision.monitored == ("watch",)
    )


# --------------------------------------------------------------------------- batch and paths


def test_batch_matches_single_evaluations(make_pdp: MakePdp) -> None:
    pdp = make_pdp(
        MONITORED + '\n@id("no-bob") forbid(principal == User::"bob", action, resource);', STORE
    )
    requests = [
        req(),
        req("bob"),
        req(action="delete"),
        req(context={"hard": True}),
        req(context={"bad": 1.5}),
        req("zed", principal_attrs={"a": 1}),
        req(action="share"),
        req(resource="other", resource_attrs={"x": [1, 2]}),
    ]
    assert pdp.evaluate_batch(requests) == [pdp.evaluate(r) for r in requests]
    assert pdp.evaluate_batch([]) == []


def test_public_cedarpy_path_gives_the_same_answers(
    make_pdp: MakePdp, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _cedar.FAST_PATH
    pdp = make_pdp(MONITORED, STORE)
    requests = [
        req(),
        req(action="delete"),
        req(context={"hard": True}),
        req(action="share"),
        req("bob"),
    ]
    fast = [pdp.evaluate(r) for r in requests] + pdp.evaluate_batch(requests)
    monkeypatch.setattr(_cedar, "_BATCH", None)
    public = [pdp.evaluate(r) for r in requests] + pdp.evaluate_batch(requests)
    assert fast == public


def test_enum_values_are_accepted(make_pdp: MakePdp) -> None:
    from enum import IntEnum, StrEnum

    class Tier(StrEnum):
        LOW = "low"

    class Level(IntEnum):
        TWO = 2

    pdp = make_pdp(
        'permit(principal, action, resource) when { principal.tier == "low" && context.l == 2 };'
    )
    assert pdp.evaluate(
        req("x", principal_attrs={"tier": Tier.LOW}, context={"l": Level.TWO})
    ).allowed
    ctx = {"l": 2, "t": [Tier.LOW], "r": {"t": Tier.LOW}}
    assert pdp.evaluate(req("x", principal_attrs={"tier": "low"}, context=ctx)).allowed


def test_malformed_request_objects_deny(make_pdp: MakePdp) -> None:
    pdp = make_pdp(ALLOW_ALL)
    weird = [
        AuthzRequest(principal=U(["User"], "x"), action="a", resource=U("R", "r")),  # type: ignore[arg-type]
        AuthzRequest(principal=U("User", {"x": 1}), action="a", resource=U("R", "r")),  # type: ignore[arg-type]
        AuthzRequest(principal=None, action="a", resource=U("R", "r")),  # type: ignore[arg-type]
        AuthzRequest(principal=U("User", "x"), action="a", resource=U("R", "r"), context=None),  # type: ignore[arg-type]
    ]
    for r in weird:
        assert not pdp.evaluate(r).allowed
    assert [d.allowed for d in pdp.evaluate_batch(weird)] == [False] * len(weird)
    listed = AuthzRequest(
        principal=U("User", "x"),
        principal_parents=[U("G", "g")],  # type: ignore[arg-type]
        action="a",
        resource=U("R", "r"),
    )
    assert pdp.evaluate(listed).allowed
