"""An in-process Warden with the edge policies, a PEP helper and raw ASGI access (no sockets)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.api.conftest import World
from warden.api.app import create_app
from warden.bootstrap import Warden
from warden.config import Settings, TrustDomainConfig
from warden.core.clock import FrozenClock
from warden.tokens.svid import DevTrustDomain

POLICIES = Path(__file__).parent / "policies"
TOOLS = ["read_file", "delete_file", "reports.read", "GET", "POST", "DELETE"]


class EdgeWorld(World):
    def agent(self, name: str = "support-bot", **extra: Any) -> dict[str, Any]:
        return self.register(name, entitlements=TOOLS, groups=["support"], **extra)

    def evaluate(self, body: Any, **headers: str) -> Any:
        return self.client.post("/access/v1/evaluation", json=body, headers=headers)

    def raw_get(self, raw_path: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
        """GET with a request target sent byte for byte (httpx would normalise `..`)."""
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": raw_path.decode("latin-1"),
            "raw_path": raw_path,
            "query_string": b"",
            "root_path": "",
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]
            + [(b"host", b"testserver")],
            "client": ("127.0.0.1", 1234),
            "server": ("testserver", 80),
        }
        from urllib.parse import unquote

        scope["path"] = unquote(raw_path.decode("latin-1"))
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        portal = self.client.portal
        assert portal is not None
        portal.call(self.client.app, scope, receive, send)
        start = next(m for m in sent if m["type"] == "http.response.start")
        return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}


def make_edge_world(tmp_path: Path, **settings_kw: Any) -> Iterator[EdgeWorld]:
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES, policies)
    trust = DevTrustDomain.create("example.org", tmp_path / "trust")
    settings = Settings(
        data_dir=tmp_path / "data",
        policies_dir=policies,
        trust_domains=(TrustDomainConfig("example.org", trust.bundle_path),),
        policy_reload_interval=0.2,
        **settings_kw,
    )
    clock = FrozenClock(time.time())
    w = Warden(settings, clock=clock)
    token_file = w.operators.bootstrap(settings.data_dir)
    assert token_file is not None
    admin = {"Authorization": f"Bearer {token_file.read_text().strip()}"}
    with TestClient(create_app(w)) as client:
        yield EdgeWorld(w, clock, client, trust, admin, policies)


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[EdgeWorld]:
    yield from make_edge_world(tmp_path)
