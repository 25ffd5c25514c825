"""Search over the entity store, and batch semantics through the AuthZEN helpers."""

from __future__ import annotations

from collections.abc import Callable

from warden.authz.authzen import (
    Semantic,
    evaluate_items,
    parse_evaluations,
    parse_search,
    run_search,
)
from warden.authz.pdp import PolicyDecisionPoint
from warden.authz.types import Decision, EntityRef
from warden.errors import InvalidParameterError

from .conftest import entity

MakePdp = Callable[..., PolicyDecisionPoint]
U = EntityRef

POLICIES = """
@id("read") permit(principal in Team::"eng", action == Action::"read", resource is Doc);
@id("write-own") permit(principal, action == Action::"write", resource is Doc)
when { resource.owner == principal };
@id("archive") permit(principal is User, action in Action::"admin", resource)
when { principal.role == "admin" };
@id("no-secret") forbid(principal, action, resource)
when { resource has secret && resource.secret };
"""
STORE = [
    entity("Team", "eng"),
    entity("User", "ann", {"role": "admin"}, [("Team", "eng")]),
    entity("User", "ben", {"role": "dev"}, [("Team", "eng")]),
    entity("User", "cid", {"role": "dev"}),
    entity("Doc", "d1", {"owner": {"__entity": {"type": "User", "id": "ben"}}}),
    entity("Doc", "d2", {"owner": {"__entity": {"type": "User", "id": "cid"}}, "secret": True}),
    entity("Doc", "d3", {"owner": {"__entity": {"type": "User", "id": "ann"}}}),
    entity("Action", "archive", parents=[("Action", "admin")]),
    entity("Action", "admin"),
]


def test_search_subjects(make_pdp: MakePdp) -> None:
    pdp = make_pdp(POLICIES, STORE)
    ctx = {"action": {}, "warden": {}}
    assert pdp.search_subjects("User", "read", U("Doc", "d1"), ctx) == [
        U("User", "ann"),
        U("User", "ben"),
    ]
    assert pdp.search_subjects("User", "read", U("Doc", "d2"), ctx) == []
    assert pdp.search_subjects(
        "User",
        "write",
        U("Doc", "new"),
        ctx,
        resource_attrs={"owner": {"__entity": {"type": "User", "id": "cid"}}},
    ) == [U("User", "cid")]
    assert pdp.search_subjects("Spaceship", "read", U("Doc", "d1"), ctx) == []
    assert pdp.search_subjects("not a type", "read", U("Doc", "d1"), ctx) == []


def test_search_resources(make_pdp: MakePdp) -> None:
    pdp = make_pdp(POLICIES, STORE)
    ctx = {"action": {}, "warden": {}}
    assert pdp.search_resources(U("User", "ben"), None, "read", "Doc", ctx) == [
        U("Doc", "d1"),
        U("Doc", "d3"),
    ]
    assert pdp.search_resources(U("User", "ben"), None, "write", "Doc", ctx) == [U("Doc", "d1")]
    assert pdp.search_resources(U("User", "zed"), None, "read", "Doc", ctx) == []
    assert pdp.search_resources(
        U("User", "zed"), None, "read", "Doc", ctx, subject_parents=(U("Team", "eng"),)
    ) == [U("Doc", "d1"), U("Doc", "d3")]
    assert pdp.search_resources(U("User", "ben"), None, "read", "Nope", ctx) == []


def test_search_actions(make_pdp: MakePdp) -> None:
    pdp = make_pdp(POLICIES, STORE)
    lps = pdp.policy_set
    assert lps is not None
    assert set(lps.action_names()) == {"read", "write", "admin", "archive"}
    ctx = {"action": {}, "warden": {}}
    assert pdp.search_actions(U("User", "ann"), None, U("Doc", "d3"), None, ctx) == [
        "read",
        "write",
        "admin",
        "archive",
    ]
    assert pdp.search_actions(U("User", "ben"), None, U("Doc", "d1"), None, ctx) == [
        "read",
        "write",
    ]
    assert pdp.search_actions(U("User", "ben"), {"role": "admin"}, U("Doc", "d1"), None, ctx) == [
        "read",
        "write",
    ]  # store wins
    assert pdp.search_actions(U("User", "new"), {"role": "admin"}, U("Doc", "d1"), None, ctx) == [
        "admin",
        "archive",
    ]
    assert pdp.search_actions(U("User", "ann"), None, U("Doc", "d2"), None, ctx) == []


def test_run_search_shapes(make_pdp: MakePdp) -> None:
    pdp = make_pdp(POLICIES, STORE)
    found = run_search(
        pdp,
        parse_search(
            {
                "subject": {"type": "User"},
                "action": {"name": "read"},
                "resource": {"type": "Doc", "id": "d3"},
            },
            "subject",
        ),
    )
    assert found == [{"type": "User", "id": "ann"}, {"type": "User", "id": "ben"}]
    found = run_search(
        pdp,
        parse_search(
            {
                "subject": {"type": "User", "id": "ann"},
                "action": {"name": "write"},
                "resource": {"type": "Doc"},
            },
            "resource",
        ),
    )
    assert found == [{"type": "Doc", "id": "d3"}]
    found = run_search(
        pdp,
        parse_search(
            {"subject": {"type": "User", "id": "ben"}, "resource": {"type": "Doc", "id": "d1"}},
            "action",
        ),
    )
    assert found == [{"name": "read"}, {"name": "write"}]


def test_evaluate_items_semantics(make_pdp: MakePdp) -> None:
    pdp = make_pdp(POLICIES, STORE)
    body = {
        "subject": {"type": "User", "id": "ben"},
        "action": {"name": "read"},
        "evaluations": [
            {"resource": {"type": "Doc", "id": "d1"}},
            {"resource": {"type": "Doc", "id": "d2"}},
            {},
            {"resource": {"type": "Doc", "id": "d3"}},
        ],
    }
    items, _ = parse_evaluations(body)

    def shape(results: list[object]) -> list[object]:
        return [r.allowed if isinstance(r, Decision) else type(r).__name__ for r in results]

    assert shape(evaluate_items(pdp, items)) == [True, False, "InvalidParameterError", True]
    assert shape(evaluate_items(pdp, items, Semantic.DENY_ON_FIRST_DENY)) == [True, False]
    assert shape(evaluate_items(pdp, items[1:], Semantic.PERMIT_ON_FIRST_PERMIT)) == [
        False,
        "InvalidParameterError",
        True,
    ]
    assert shape(evaluate_items(pdp, items[2:], Semantic.DENY_ON_FIRST_DENY)) == [
        "InvalidParameterError"
    ]
    assert evaluate_items(pdp, []) == []
    assert isinstance(evaluate_items(pdp, items)[2], InvalidParameterError)
