"""The evaluation route answered straight from ASGI (ADR 0143) says exactly what the FastAPI route
says: the same status, body shape and headers for allows, denies and every kind of refusal."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import World
from warden.api.app import create_app
from warden.api.fast import EvaluationRoute

ALICE = {"type": "user", "id": "alice"}
READ = {"subject": ALICE, "action": {"name": "read"}, "resource": {"type": "record", "id": "r1"}}
JSON = {"content-type": "application/json"}


@pytest.fixture
def plain(world: World) -> Iterator[TestClient]:
    """The same Warden behind an app without the raw route: FastAPI's route answers."""
    app = create_app(world.warden, manage_lifecycle=False)
    app.user_middleware = [m for m in app.user_middleware if m.cls is not EvaluationRoute]
    with TestClient(app) as client:
        yield client


def _shape(body: Any) -> Any:
    """The answer without what differs per decision (ids)."""
    if isinstance(body, dict):
        return {k: _shape(v) for k, v in body.items() if k not in ("decision_id", "request_id")}
    return body


CASES: list[tuple[str, dict[str, Any]]] = [
    ("allow", {"json": READ}),
    (
        "deny",
        {"json": {**READ, "action": {"name": "write"}, "resource": {"type": "record", "id": "x"}}},
    ),
    ("not json", {"content": b"{nope", "headers": JSON}),
    ("empty", {"content": b"", "headers": JSON}),
    ("wrong media type", {"content": b"{}", "headers": {"content-type": "text/plain"}}),
    ("not an object", {"json": [1, 2]}),
    ("missing subject", {"json": {"action": {"name": "read"}, "resource": READ["resource"]}}),
    ("reserved type", {"json": {**READ, "subject": {"type": "Agent", "id": "x"}}}),
    ("agent without credential", {"json": {**READ, "subject": {"type": "agent", "id": "a"}}}),
]


@pytest.mark.parametrize(("name", "request_kw"), CASES, ids=[c[0] for c in CASES])
def test_the_raw_route_answers_as_the_fastapi_route(
    world: World, plain: TestClient, name: str, request_kw: dict[str, Any]
) -> None:
    fast = world.client.post("/access/v1/evaluation", **request_kw)
    slow = plain.post("/access/v1/evaluation", **request_kw)
    assert fast.status_code == slow.status_code, (fast.text, slow.text)
    assert _shape(fast.json()) == _shape(slow.json())
    assert fast.headers["content-type"] == slow.headers["content-type"]
    assert fast.headers["x-request-id"] and slow.headers["x-request-id"]
    if name == "allow":
        assert fast.json()["decision"] is True
    elif fast.status_code == 200:
        assert fast.json()["decision"] is False
    else:
        assert fast.status_code in (400, 415)


def test_an_unauthenticated_pep_is_refused_and_logged_the_same_way(
    world: World, plain: TestClient
) -> None:
    world.warden.settings = replace(
        world.warden.settings, host="0.0.0.0", pep_api_keys=("pep-key-1",)
    )
    for client in (world.client, plain):
        r = client.post("/access/v1/evaluation", json=READ, headers={"x-request-id": "rid-1"})
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert r.headers["x-request-id"] == "rid-1"
        assert r.json()["request_id"] == "rid-1"
        ok = client.post("/access/v1/evaluation", json=READ, headers={"x-api-key": "pep-key-1"})
        assert ok.status_code == 200
    world.warden.refusals.flush()
    refused = world.audit("operator.auth_refused")
    assert sum(r["data"]["count"] for r in refused) == 2  # both routes note the refusal


def test_other_methods_and_paths_still_reach_the_app(world: World) -> None:
    assert world.client.get("/access/v1/evaluation").status_code == 405
    slash = world.client.post("/access/v1/evaluation/", json=READ, follow_redirects=False)
    assert slash.status_code == 307  # the router's redirect, as before
    batch = world.client.post("/access/v1/evaluations", json={"evaluations": [READ]})
    assert batch.status_code == 200 and batch.json()["evaluations"][0]["decision"] is True
