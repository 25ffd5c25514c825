"""Issue 10 item 4: identifiers match as a whole string (no trailing newline twin), owners are
e-mail-like, and an agent can only be registered for an active human."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from warden.core.ids import (
    full_match,
    validate_agent_name,
    validate_group,
    validate_owner,
    validate_scope_token,
)
from warden.errors import InvalidParameterError

from .conftest import EdgeWorld

pytestmark = pytest.mark.security

SRC = Path(__file__).resolve().parents[2] / "src" / "warden"


def test_no_pattern_in_warden_is_anchored_with_a_dollar() -> None:
    # `$` also matches before a trailing newline: every id check goes through full_match
    offenders = []
    for path in SRC.rglob("*.py"):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"re\.compile\(r?[\"']\^.*\$[\"']", line) or ".match(" in line:
                offenders.append(f"{path.relative_to(SRC)}:{n}")
    assert offenders == []


@pytest.mark.parametrize(
    "check",
    [validate_agent_name, validate_group, validate_scope_token, validate_owner],
)
@pytest.mark.parametrize("suffix", ["\n", "\r\n", "\x00", " ", "\t"])
def test_validators_refuse_trailing_junk(check: Any, suffix: str) -> None:
    good = {
        validate_agent_name: "lca-x",
        validate_group: "support",
        validate_scope_token: "tickets.read",
        validate_owner: "alice@example.com",
    }[check]
    assert check(good) == good
    with pytest.raises(InvalidParameterError):
        check(good + suffix)


def test_full_match_is_whole_string() -> None:
    pattern = re.compile(r"[a-z]+")
    assert full_match(pattern, "abc")
    assert not full_match(pattern, "abc\n")
    assert not full_match(pattern, None)


def _register(edge: EdgeWorld, **body: Any) -> Any:
    doc = {
        "name": "lca-x",
        "owner": "alice@example.com",
        "purpose": "p",
        "entitlements": ["read_file"],
        **body,
    }
    return edge.client.post("/v1/agents", json=doc, headers=edge.admin)


@pytest.mark.parametrize(
    "body",
    [
        {"name": "lca-x\n"},
        {"name": "lca-x\r\n"},
        {"name": "LCA-X"},
        {"spiffe_id": "spiffe://example.org/agent/lca-x\n"},
        {"spiffe_id": "spiffe://example.org/agent/lca-\u0445"},
        {"groups": ["support\n"]},
        {"entitlements": ["read_file\n"]},
        {"entitlements": "read_file\x00"},
        {"owner": "alice@example.com\n"},
        {"owner": "alice"},
        {"owner": "alice@"},
        {"owner": "@example.com"},
        {"owner": "a b@example.com"},
        {"owner": "alice@example.com, bob@example.com"},
        {"owner": ["alice@example.com"]},
        {"owner": 7},
    ],
)
def test_registration_refuses_look_alike_identifiers(edge: EdgeWorld, body: dict[str, Any]) -> None:
    r = _register(edge, **body)
    assert r.status_code == 400, r.text
    assert edge.client.get("/v1/agents", headers=edge.admin).json()["agents"] == []


def test_a_newline_twin_cannot_register_beside_the_original(edge: EdgeWorld) -> None:
    assert _register(edge).status_code == 201
    assert _register(edge, name="lca-x\n").status_code == 400
    assert [
        a["name"] for a in edge.client.get("/v1/agents", headers=edge.admin).json()["agents"]
    ] == ["lca-x"]


def test_an_inactive_owner_cannot_take_an_agent(edge: EdgeWorld) -> None:
    assert _register(edge).status_code == 201
    r = edge.client.post(
        "/v1/owners/alice@example.com/deactivate", json={"reason": "left"}, headers=edge.admin
    )
    assert r.status_code == 200, r.text
    refused = _register(edge, name="lca-y")
    assert refused.status_code == 409, refused.text
    assert edge.client.get("/v1/agents/lca-y", headers=edge.admin).status_code == 404
    assert _register(edge, name="lca-z", owner="bob@example.com").status_code == 201
    moved = edge.client.patch(
        "/v1/agents/lca-z", json={"owner": "alice@example.com"}, headers=edge.admin
    )
    assert moved.status_code == 409
    agent = edge.client.get("/v1/agents/lca-z", headers=edge.admin).json()
    assert agent["owner"] == "bob@example.com"
