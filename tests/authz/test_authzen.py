"""AuthZEN wire parsing and the AuthZEN → Cedar mapping."""

from __future__ import annotations

from typing import Any

import pytest

from warden.authz.authzen import (
    ActionInput,
    EntityInput,
    EvaluationInput,
    SearchKind,
    Semantic,
    cedar_context,
    parse_evaluation,
    parse_evaluations,
    parse_search,
    to_cedar,
)
from warden.authz.types import EntityRef
from warden.errors import InvalidParameterError

OK: dict[str, Any] = {
    "subject": {"type": "user", "id": "alice"},
    "action": {"name": "read"},
    "resource": {"type": "record", "id": "r1"},
}


def test_parse_evaluation() -> None:
    body = {
        "subject": {"type": "user", "id": "alice", "properties": {"role": "x"}, "extra": 1},
        "action": {"name": "read", "properties": {"soft": True}},
        "resource": {"type": "record", "id": "r1"},
        "context": {"ip": "10.0.0.1"},
        "unknown": "ignored",
    }
    ev = parse_evaluation(body)
    assert ev == EvaluationInput(
        EntityInput("user", "alice", {"role": "x"}),
        ActionInput("read", {"soft": True}),
        EntityInput("record", "r1", None),
        {"ip": "10.0.0.1"},
    )
    assert ev.subject.ref == EntityRef("user", "alice")


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ([], "body", "the request body must be a JSON object"),
        (
            {"action": OK["action"], "resource": OK["resource"]},
            "subject",
            "missing required field `subject`",
        ),
        ({**OK, "action": None}, "action", "missing required field `action`"),
        (
            {"subject": OK["subject"], "action": OK["action"]},
            "resource",
            "missing required field `resource`",
        ),
        ({**OK, "subject": "alice"}, "subject", "`subject` must be an object"),
        ({**OK, "resource": ["r"]}, "resource", "`resource` must be an object"),
        (
            {**OK, "subject": {"id": "alice"}},
            "subject.type",
            "missing required field `subject.type`",
        ),
        ({**OK, "subject": {"type": "user"}}, "subject.id", "missing required field `subject.id`"),
        (
            {**OK, "subject": {"type": 1, "id": "a"}},
            "subject.type",
            "`subject.type` must be a string",
        ),
        (
            {**OK, "resource": {"type": "r", "id": 7}},
            "resource.id",
            "`resource.id` must be a string",
        ),
        ({**OK, "action": {}}, "action.name", "missing required field `action.name`"),
        ({**OK, "action": {"name": 123}}, "action.name", "`action.name` must be a string"),
        (
            {**OK, "action": {"name": "x", "properties": []}},
            "action.properties",
            "`action.properties` must be an object",
        ),
        (
            {**OK, "subject": {**OK["subject"], "properties": "p"}},
            "subject.properties",
            "must be an object",
        ),
        ({**OK, "context": "c"}, "context", "`context` must be an object"),
    ],
)
def test_parse_evaluation_errors(body: Any, field: str, message: str) -> None:
    with pytest.raises(InvalidParameterError) as err:
        parse_evaluation(body)
    assert err.value.detail == {"field": field}
    assert message in err.value.message
    assert err.value.code == "invalid_parameter"


def test_batch_inheritance_is_wholesale() -> None:
    body = {
        "subject": {"type": "user", "id": "alice", "properties": {"a": 1}},
        "action": {"name": "read"},
        "resource": {"type": "record", "properties": {"status": "archived"}},
        "context": {"k": "top"},
        "evaluations": [
            {"resource": {"id": "r1"}},  # type falls back to the default, properties do not
            {
                "resource": {"type": "doc", "id": "r2", "properties": {"x": 1}},
                "context": {"k": "item"},
            },
            {"subject": {"type": "user", "id": "bob"}, "resource": {"type": "record", "id": "r3"}},
            {},  # inherits a resource without an id: per-item error
            "nope",
        ],
    }
    items, semantic = parse_evaluations(body)
    assert semantic is Semantic.EXECUTE_ALL
    first, second, third, fourth, fifth = items
    assert isinstance(first, EvaluationInput)
    assert first.resource == EntityInput("record", "r1", None)
    assert first.subject.properties == {"a": 1} and first.context == {"k": "top"}
    assert isinstance(second, EvaluationInput)
    assert second.resource == EntityInput("doc", "r2", {"x": 1}) and second.context == {"k": "item"}
    assert isinstance(third, EvaluationInput) and third.subject == EntityInput("user", "bob", None)
    assert isinstance(fourth, InvalidParameterError)
    assert fourth.detail == {"field": "evaluations[3].resource.id"}
    assert fourth.message == "evaluations[3]: missing required field `resource.id`"
    assert (
        isinstance(fifth, InvalidParameterError)
        and "`evaluations[4]` must be an object" in fifth.message
    )


def test_batch_item_without_inheritable_entity_is_an_item_error() -> None:
    items, _ = parse_evaluations(
        {
            "subject": OK["subject"],
            "action": OK["action"],
            "evaluations": [{"resource": OK["resource"]}, {}],
        }
    )
    assert isinstance(items[0], EvaluationInput)
    assert isinstance(items[1], InvalidParameterError)
    assert items[1].message == "evaluations[1]: missing required field `resource`"


@pytest.mark.parametrize("value", [None, []])
def test_batch_without_evaluations_is_single(value: Any) -> None:
    body = {**OK, "evaluations": value} if value is not None else dict(OK)
    assert parse_evaluations(body) == ([], Semantic.EXECUTE_ALL)


@pytest.mark.parametrize("semantic", list(Semantic))
def test_batch_semantics(semantic: Semantic) -> None:
    _, got = parse_evaluations(
        {**OK, "options": {"evaluations_semantic": semantic.value}, "evaluations": [{}]}
    )
    assert got is semantic


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("x", "body"),
        (
            {**OK, "options": {"evaluations_semantic": "all"}, "evaluations": [{}]},
            "options.evaluations_semantic",
        ),
        (
            {**OK, "options": {"evaluations_semantic": 3}, "evaluations": [{}]},
            "options.evaluations_semantic",
        ),
        ({**OK, "options": "fast", "evaluations": [{}]}, "options"),
        ({**OK, "evaluations": {"a": 1}}, "evaluations"),
        ({**OK, "subject": "alice", "evaluations": [{}]}, "subject"),
        ({**OK, "subject": {"type": 5}, "evaluations": [{}]}, "subject.type"),
        ({**OK, "action": {"name": 5}, "evaluations": [{}]}, "action.name"),
        ({**OK, "resource": {"properties": 5}, "evaluations": [{}]}, "resource.properties"),
        ({**OK, "context": [], "evaluations": [{}]}, "context"),
    ],
)
def test_batch_payload_errors(body: Any, field: str) -> None:
    with pytest.raises(InvalidParameterError) as err:
        parse_evaluations(body)
    assert err.value.detail == {"field": field}


def test_parse_search() -> None:
    subject = parse_search(
        {
            "subject": {"type": "user", "id": "ignored"},
            "action": {"name": "read"},
            "resource": OK["resource"],
            "page": {"limit": 1},
        },
        "subject",
    )
    assert subject.kind is SearchKind.SUBJECT
    assert subject.subject is None and subject.subject_type == "user"
    assert subject.resource == EntityInput("record", "r1") and subject.page == {"limit": 1}
    resource = parse_search(
        {"subject": OK["subject"], "action": {"name": "read"}, "resource": {"type": "record"}},
        SearchKind.RESOURCE,
    )
    assert (
        resource.resource is None
        and resource.resource_type == "record"
        and resource.subject == EntityInput("user", "alice")
    )
    action = parse_search(
        {"subject": OK["subject"], "resource": OK["resource"], "action": "ignored"}, "action"
    )
    assert action.action is None and action.subject is not None and action.resource is not None


@pytest.mark.parametrize(
    ("kind", "body", "field"),
    [
        ("subject", {"subject": {"type": "user"}, "resource": OK["resource"]}, "action"),
        (
            "subject",
            {"subject": {"type": "user"}, "action": OK["action"], "resource": {"type": "record"}},
            "resource.id",
        ),
        (
            "subject",
            {"subject": {"id": "x"}, "action": OK["action"], "resource": OK["resource"]},
            "subject.type",
        ),
        ("resource", {"action": OK["action"], "resource": {"type": "record"}}, "subject"),
        (
            "resource",
            {"subject": {"type": "user"}, "action": OK["action"], "resource": {"type": "record"}},
            "subject.id",
        ),
        (
            "resource",
            {"subject": OK["subject"], "action": OK["action"], "resource": {}},
            "resource.type",
        ),
        ("action", {"subject": OK["subject"]}, "resource"),
        ("action", {"subject": OK["subject"], "resource": OK["resource"], "page": 3}, "page"),
        ("action", {"subject": OK["subject"], "resource": OK["resource"], "context": 3}, "context"),
    ],
)
def test_parse_search_errors(kind: str, body: Any, field: str) -> None:
    with pytest.raises(InvalidParameterError) as err:
        parse_search(body, kind)
    assert err.value.detail == {"field": field}


def test_to_cedar_mapping() -> None:
    ev = parse_evaluation(
        {
            "subject": {"type": "user", "id": "alice", "properties": {"role": "x"}},
            "action": {"name": "read", "properties": {"soft": True}},
            "resource": {"type": "record", "id": "r1", "properties": {"status": "s"}},
            "context": {"ip": "1.2.3.4", "warden": {"approval": True}, "action": "spoofed"},
        }
    )
    req = to_cedar(ev, warden_context={"task": {"id": "t"}})
    assert req.principal == EntityRef("user", "alice") and req.principal_attrs == {"role": "x"}
    assert req.action == "read"
    assert req.resource == EntityRef("record", "r1") and req.resource_attrs == {"status": "s"}
    assert req.context == {
        "ip": "1.2.3.4",
        "action": {"soft": True},
        "warden": {"task": {"id": "t"}},
    }
    assert req.principal_parents == ()
    bare = to_cedar(parse_evaluation(OK))
    assert bare.context == {"action": {}, "warden": {}}
    assert cedar_context({"warden": 1}, None, None) == {"action": {}, "warden": {}}


def test_tool_call_normalisation() -> None:
    ev = parse_evaluation(
        {
            "subject": {"type": "identity", "id": "u"},
            "action": {"name": "tools/call"},
            "resource": {"type": "tool", "id": "send_email", "properties": {"server": "mail"}},
            "context": {"arguments": {"to": "x"}},
        }
    )
    req = to_cedar(ev)
    assert req.action == "send_email"
    assert req.resource == EntityRef("Tool", "send_email") and req.resource_attrs == {
        "server": "mail"
    }
    assert req.context["arguments"] == {"to": "x"}
    other = to_cedar(parse_evaluation({**OK, "action": {"name": "tools/call"}}))
    assert other.action == "tools/call" and other.resource == EntityRef("record", "r1")
