"""Issue 10, property-based: for random paths, types and tool ids, no input a PEP can send
yields an allow that the same request with canonical values would deny."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from warden.core.names import is_reserved_type
from warden.core.paths import canonical_path
from warden.errors import InvalidParameterError

from .conftest import EdgeWorld

pytestmark = pytest.mark.security

API = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# the characters path attacks are made of
_PIECES = st.sampled_from(
    [
        "/",
        ".",
        "..",
        "%2e",
        "%2E",
        "%2f",
        "%5c",
        "\\",
        ";",
        "%00",
        "%25",
        "%74",
        "api",
        "tickets",
        "admin",
        "T-1",
        "?",
        "~",
        "%7e",
        "//",
        "%3b",
        "a",
    ]
)
paths = st.lists(_PIECES, min_size=1, max_size=12).map(lambda parts: "/" + "".join(parts))


@given(paths)
def test_canonical_paths_are_a_fixed_point(raw: str) -> None:
    try:
        canon = canonical_path(raw)
    except InvalidParameterError:
        return
    path = canon.path
    assert path.startswith("/")
    segments = path.split("/")[1:]
    assert "." not in segments and ".." not in segments
    assert "//" not in path and "\\" not in path and ";" not in path
    assert canonical_path(path).path == path  # canonicalising twice changes nothing


@pytest.fixture
def auth(edge: EdgeWorld) -> dict[str, str]:
    edge.agent()
    task = edge.start_task(scope="GET")
    return {"Authorization": f"Bearer {task['access_token']}"}


@API
@given(raw=paths)
def test_no_raw_path_is_allowed_where_its_canonical_form_is_denied(
    edge: EdgeWorld, auth: dict[str, str], raw: str
) -> None:
    def status(uri: str) -> int:
        return edge.client.get(
            "/v1/forward-auth",
            headers={**auth, "X-Original-Method": "GET", "X-Original-URI": uri},
        ).status_code

    got = status(raw)
    assert got in (200, 400, 403)
    if got == 200:
        canon = canonical_path(raw).path
        assert status(canon) == 200
        assert canon.startswith("/api/tickets")


@API
@given(
    type_=st.one_of(
        st.sampled_from(["Agent", "agent", "Task", "Group", "user", "Agents", "Warden::Agent"]),
        st.text(min_size=1, max_size=12),
        st.builds(
            lambda a, b: a + b,
            st.sampled_from(["Agent", "AGENT", "agent", "A\u0261ent", "\u0410gent"]),
            st.text(max_size=3),
        ),
    )
)
def test_no_subject_type_reaches_an_agent_policy_without_a_credential(
    edge: EdgeWorld, type_: str
) -> None:
    body = {
        "subject": {
            "type": type_,
            "id": "spiffe://example.org/agent/x",
            "properties": {"risk_tier": "low"},
        },
        "action": {"name": "reports.read"},
        "resource": {"type": "doc", "id": "d1"},
    }
    r = edge.evaluate(body)
    assert r.status_code in (200, 400), r.text
    if r.status_code == 200:
        assert r.json()["decision"] is False
    if is_reserved_type(type_) and type_ != "agent":
        assert r.status_code == 400


@pytest.fixture
def task(edge: EdgeWorld) -> dict[str, Any]:
    edge.agent()
    return edge.start_task(scope="read_file")


@API
@given(
    action=st.one_of(
        st.sampled_from(["read_file", "tools/call", "delete_file"]), st.text(max_size=12)
    ),
    tool=st.one_of(
        st.sampled_from(["read_file", "delete_file", "read_file "]), st.text(max_size=12)
    ),
    type_=st.sampled_from(["tool", "Tool", "TOOL", "MCPServer"]),
)
def test_a_tool_call_is_allowed_only_for_the_one_tool_in_scope(
    edge: EdgeWorld, task: dict[str, Any], action: str, tool: str, type_: str
) -> None:
    body = {
        "subject": {
            "type": "agent",
            "id": task["spiffe_id"],
            "properties": {"token": task["access_token"]},
        },
        "action": {"name": action},
        "resource": {"type": type_, "id": tool},
    }
    r = edge.evaluate(body)
    assert r.status_code in (200, 400), r.text
    if r.status_code == 200 and r.json()["decision"]:
        # the canonical request: one tool, named the same in both slots, inside the scope
        named = tool if action == "tools/call" and type_ != "MCPServer" else action
        assert named == "read_file"
        if type_ != "MCPServer":
            assert tool == "read_file"
