"""AuthZEN 1.0 conformance over HTTP: the same certification cases and interop vectors, sent
through the real ASGI app (middleware, routing, JSON codec, error mapping, audit) of a Warden
instance loaded with each scenario's fixture policies."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from warden.api.app import create_app
from warden.bootstrap import Warden
from warden.config import Settings

from .authzen_runner import (
    FIXTURES,
    Post,
    RequestRejectedError,
    Vector,
    certification_cases,
    check,
)

CERTIFICATION = certification_cases()


@pytest.fixture(scope="module")
def http_post(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Post]]:
    """One Warden server app per scenario fixture folder, behind a ``post`` callable."""
    clients: list[TestClient] = []
    posts: dict[str, Post] = {}
    for folder in sorted(p for p in FIXTURES.iterdir() if p.is_dir()):
        settings = Settings(
            data_dir=tmp_path_factory.mktemp(f"conformance-{folder.name}"),
            policies_dir=folder,
            policy_reload_interval=3600,
        )
        client = TestClient(create_app(Warden(settings)))
        client.__enter__()
        clients.append(client)
        posts[folder.name] = _poster(client)
    yield posts
    for client in clients:
        client.__exit__(None, None, None)


def _poster(client: TestClient) -> Post:
    def post(path: str, body: Any) -> dict[str, Any]:
        r = client.post(path, json=body, headers={"X-Request-ID": "conformance"})
        assert r.headers.get("x-request-id") == "conformance"
        if r.status_code != 200:
            raise RequestRejectedError(r.status_code, r.text)
        result: dict[str, Any] = r.json()
        return result

    return post


@pytest.mark.parametrize("case", CERTIFICATION, ids=[c.id for c in CERTIFICATION])
def test_certification_scenario_over_http(case: Vector, http_post: dict[str, Post]) -> None:
    check(case, http_post[case.scenario])


def test_interop_vector_over_http(interop_vector: Vector, http_post: dict[str, Post]) -> None:
    check(interop_vector, http_post[interop_vector.scenario])


def test_every_scenario_has_a_fixture_folder() -> None:
    folders = {p.name for p in FIXTURES.iterdir() if p.is_dir()}
    assert folders >= {"certification", "todo", "api-gateway", "search", "idp"}
