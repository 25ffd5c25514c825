"""Issue 10 item 2: a tool call names one tool — the action and a tool resource agree exactly,
or the call is refused (``tool_mismatch``); the task scope covers both."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import EdgeWorld

pytestmark = pytest.mark.security


@pytest.fixture
def task(edge: EdgeWorld) -> dict[str, Any]:
    edge.agent()
    return edge.start_task(scope="read_file")


def _call(edge: EdgeWorld, task: dict[str, Any], action: str, type_: str, id_: str) -> Any:
    return edge.evaluate(
        {
            "subject": {
                "type": "agent",
                "id": task["spiffe_id"],
                "properties": {"token": task["access_token"]},
            },
            "action": {"name": action},
            "resource": {"type": type_, "id": id_},
        }
    )


@pytest.mark.parametrize(
    "resource_id",
    [
        "delete_file",
        " || true || ",
        "read_file ",
        "read_file\n",
        "Read_file",
        "read_fil\u0435",  # Cyrillic e
        "",
        "read_file;delete_file",
        'read_file" || "x',
    ],
)
@pytest.mark.parametrize("type_", ["tool", "Tool", "TOOL", "T_ool"])
def test_action_and_tool_resource_must_name_the_same_tool(
    edge: EdgeWorld, task: dict[str, Any], type_: str, resource_id: str
) -> None:
    r = _call(edge, task, "read_file", type_, resource_id)
    assert r.status_code == 200, r.text
    assert r.json()["decision"] is False
    assert r.json()["context"]["reason"] == "tool_mismatch"


def test_the_matching_call_is_allowed_in_either_form(edge: EdgeWorld, task: dict[str, Any]) -> None:
    assert _call(edge, task, "read_file", "tool", "read_file").json()["decision"] is True
    assert _call(edge, task, "read_file", "Tool", "read_file").json()["decision"] is True
    assert _call(edge, task, "tools/call", "tool", "read_file").json()["decision"] is True
    assert _call(edge, task, "tools/call", "Tool", "read_file").json()["decision"] is True


def test_scope_covers_the_tool_resource_too(edge: EdgeWorld, task: dict[str, Any]) -> None:
    # delete_file is entitled but not in this task's scope, in whichever slot it is named
    out = _call(edge, task, "tools/call", "tool", "delete_file").json()
    assert out["decision"] is False and out["context"]["reason"] == "out_of_scope"
    out = _call(edge, task, "delete_file", "tool", "delete_file").json()
    assert out["context"]["reason"] == "out_of_scope"
    out = _call(edge, task, "delete_file", "tool", "read_file").json()
    assert out["context"]["reason"] == "tool_mismatch"


def test_mismatches_are_audited_with_the_precise_reason(
    edge: EdgeWorld, task: dict[str, Any]
) -> None:
    _call(edge, task, "read_file", "tool", "delete_file")
    record = edge.audit("authz.decision")[-1]
    assert record["data"]["reason"] == "tool_mismatch"
    assert "delete_file" in record["data"]["detail"]
    assert record["task_id"] == task["task_id"]


def test_plain_requests_are_held_to_the_same_rule(edge: EdgeWorld) -> None:
    r = edge.evaluate(
        {
            "subject": {"type": "user", "id": "alice"},
            "action": {"name": "read"},
            "resource": {"type": "tool", "id": "delete_file"},
        }
    )
    assert r.status_code == 200 and r.json()["decision"] is False
    assert r.json()["context"]["reason"] == "tool_mismatch"
