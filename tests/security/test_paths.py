"""Issue 10 item 3: forward-auth decides on one canonical path (RFC 3986 §5.2.4 dot segments,
unreserved escapes decoded), refuses paths with no single reading, and audits both forms."""

from __future__ import annotations

from typing import Any

import pytest

from warden.core.paths import canonical_path, remove_dot_segments
from warden.errors import InvalidParameterError

from .conftest import EdgeWorld

pytestmark = pytest.mark.security


# RFC 3986 §5.2.4 and §5.4 examples, as absolute paths
@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("/a/b/c/./../../g", "/a/g"),
        ("/mid/content=5/../6", "/mid/6"),
        ("/a/b/c/.", "/a/b/c/"),
        ("/a/b/c/..", "/a/b/"),
        ("/../g", "/g"),
        ("/a/../../../g", "/g"),
        ("/.", "/"),
        ("/g.", "/g."),
        ("/.g", "/.g"),
        ("/..g", "/..g"),
        ("/g..", "/g.."),
    ],
)
def test_remove_dot_segments(raw: str, want: str) -> None:
    assert remove_dot_segments(raw) == want


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("/api/tickets/../../admin", "/admin"),
        ("/api/tickets/%2e%2e/%2E%2E/admin", "/admin"),
        ("/api/tickets/.%2e/admin", "/api/admin"),
        ("/api/%74ickets/1", "/api/tickets/1"),  # unreserved escape decoded
        ("/api/tickets/%7e", "/api/tickets/~"),
        ("/api/tickets/%c3%a9", "/api/tickets/%C3%A9"),  # reserved/non-ASCII kept, upper-cased
        ("/api/tickets/%252e%252e/admin", "/api/tickets/%252e%252e/admin"),  # no double decode
        ("/api/tickets/1?x=../..", "/api/tickets/1"),
    ],
)
def test_canonical_forms(raw: str, want: str) -> None:
    assert canonical_path(raw).path == want


@pytest.mark.parametrize(
    "raw",
    [
        "/api/tickets/..%2f..%2fadmin",
        "/api/tickets/%2F../admin",
        "/api/tickets/..%5c..%5cadmin",
        "/api/tickets\\..\\admin",
        "/api/tickets/%00/x",
        "/api/tickets/%0a",
        "/api/tickets/..;/admin",
        "/api/tickets;jsessionid=1/x",
        "/api/tickets/%3b/x",
        "//evil.example/api/tickets",
        "/api//tickets",
        "/api/tickets/%zz",
        "/api/tickets/%4",
        "api/tickets",
        "http://evil.example/api/tickets",
        "/api/tickets/\u00e9",
        "/api/tickets/a b",
        "/api/tickets#frag",
        "",
        "/" + "a" * 5000,
    ],
)
def test_paths_without_a_single_reading_are_refused(raw: str) -> None:
    with pytest.raises(InvalidParameterError) as err:
        canonical_path(raw)
    assert err.value.detail["reason"] == "unsafe_path"


# -- through the endpoint ----------------------------------------------------------------------


@pytest.fixture
def auth(edge: EdgeWorld) -> dict[str, str]:
    edge.agent()
    task = edge.start_task(scope="GET POST")
    return {"Authorization": f"Bearer {task['access_token']}"}


def _nginx(edge: EdgeWorld, auth: dict[str, str], uri: str) -> Any:
    return edge.client.get(
        "/v1/forward-auth",
        headers={**auth, "X-Original-Method": "GET", "X-Original-URI": uri},
    )


@pytest.mark.parametrize(
    "uri",
    [
        "/api/tickets/../../admin",
        "/api/tickets/%2e%2e/%2e%2e/admin",
        "/api/tickets/.%2E/.%2E/admin",
        "/api/tickets/../admin",
    ],
)
def test_dot_segments_are_decided_on_the_canonical_path(
    edge: EdgeWorld, auth: dict[str, str], uri: str
) -> None:
    r = _nginx(edge, auth, uri)
    assert r.status_code == 403, r.text
    record = edge.audit("authz.decision")[-1]["data"]
    assert not record["resource"]["id"].startswith("/api/tickets")
    assert record["context"]["http"]["raw_path"] == uri


@pytest.mark.parametrize(
    "uri",
    [
        "/api/tickets/..%2f..%2fadmin",
        "/api/tickets/..%5Cadmin",
        "/api/tickets/..\\admin",
        "/api/tickets/%00",
        "/api/tickets/..;/admin",
        "//evil.example/api/tickets",
        "/api/tickets//../admin",
    ],
)
def test_unsafe_paths_are_a_400_never_a_decision(
    edge: EdgeWorld, auth: dict[str, str], uri: str
) -> None:
    r = _nginx(edge, auth, uri)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["details"]["reason"] == "unsafe_path"
    assert edge.audit("authz.decision") == []


def test_the_canonical_and_raw_paths_are_both_audited(
    edge: EdgeWorld, auth: dict[str, str]
) -> None:
    r = _nginx(edge, auth, "/api/%74ickets/./T-1")
    assert r.status_code == 200, r.text
    record = edge.audit("authz.decision")[-1]["data"]
    assert record["resource"]["id"] == "/api/tickets/T-1"
    assert record["context"]["http"]["path"] == "/api/tickets/T-1"
    assert record["context"]["http"]["raw_path"] == "/api/%74ickets/./T-1"


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"/v1/forward-auth/api/tickets/T-1", 200),
        (b"/v1/forward-auth/api/tickets/../../admin", 403),
        (b"/v1/forward-auth/api/tickets/%2e%2e/%2e%2e/admin", 403),
        (b"/v1/forward-auth/api/tickets/..%2f..%2fadmin", 400),
        (b"/v1/forward-auth/api/tickets/..;/admin", 400),
        (b"/v1/forward-auth//evil.example/api/tickets", 400),
        (b"/v1/forward-auth%2fapi/tickets/T-1", 400),
        (b"/v1/forward-auth/api/tickets/%00", 400),
    ],
)
def test_envoy_path_suffix_is_canonicalised_from_the_raw_target(
    edge: EdgeWorld, auth: dict[str, str], raw: bytes, status: int
) -> None:
    got, _ = edge.raw_get(raw, auth)
    assert got == status
