"""A real Warden HTTP server on loopback (uvicorn in a thread), an agent, and MCP helpers."""

from __future__ import annotations

import json
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from warden.api.app import create_app
from warden.bootstrap import Warden
from warden.config import Settings, TrustDomainConfig
from warden.demo.server import free_port
from warden.tokens.svid import DevTrustDomain

POLICIES = Path(__file__).parent / "policies"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"
ENTITLEMENTS = [
    "tickets.read",
    "archive.tickets.read",
    "email.send",
    "tickets.export",
    "payments.refund",
    "tickets.summarize",
    "whoami",
    "sleep",
    "crash",
    "resources/read",
    "prompts/get",
    "GET",
    "POST",
    "DELETE",
]
SCOPE = (
    "tickets.read archive.tickets.read email.send tickets.export whoami sleep crash "
    "resources/read prompts/get"
)


def have_mcp() -> bool:
    try:
        import mcp  # noqa: F401
    except ImportError:
        return False
    return True


needs_mcp = pytest.mark.skipif(
    not have_mcp(), reason="the MCP Python SDK is not installed (pip install 'warden[mcp]')"
)


class ThreadServer:
    """uvicorn serving an ASGI app on a free loopback port, in a background thread."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@dataclass
class LiveWarden:
    warden: Warden
    url: str
    trust: DevTrustDomain
    admin: dict[str, str]
    tmp: Path
    proxy_ports: list[int]

    def register(self, name: str = "helpdesk-bot", **extra: Any) -> str:
        body = {
            "name": name,
            "owner": "alice@example.com",
            "purpose": "answer helpdesk tickets",
            "risk_tier": "medium",
            "entitlements": ENTITLEMENTS,
            "groups": ["support"],
            **extra,
        }
        r = httpx.post(f"{self.url}/v1/agents", json=body, headers=self.admin)
        assert r.status_code == 201, r.text
        spiffe_id: str = r.json()["spiffe_id"]
        return spiffe_id

    def svid(self, spiffe_id: str) -> str:
        return self.trust.mint(spiffe_id, "warden")

    def start_task(
        self, spiffe_id: str, scope: str = SCOPE, audience: str | None = None
    ) -> dict[str, Any]:
        data: dict[str, Any] = {
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": self.svid(spiffe_id),
            "subject_token_type": JWT_TYPE,
            "scope": scope,
            "authorization_details": json.dumps(
                [{"type": "agent_task", "purpose": "answer T-1042", "category": "support"}]
            ),
        }
        if audience:
            data["audience"] = audience
        r = httpx.post(f"{self.url}/oauth2/token", data=data)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def complete(self, task: dict[str, Any]) -> None:
        r = httpx.post(
            f"{self.url}/v1/tasks/{task['task_id']}/complete",
            json={},
            headers={"Authorization": f"Bearer {task['access_token']}"},
        )
        assert r.status_code == 200, r.text

    def audit(self, type_prefix: str = "authz.decision") -> list[dict[str, Any]]:
        self.warden.writer.flush()
        r = httpx.get(
            f"{self.url}/v1/audit",
            params={"limit": "1000", "type": type_prefix},
            headers=self.admin,
        )
        assert r.status_code == 200, r.text
        records: list[dict[str, Any]] = r.json()["records"]
        return records


PROXY_PORT_AUDIENCES = 4  # audiences reserved for proxies started by the tests


@contextmanager
def running_warden(tmp_path: Path) -> Iterator[LiveWarden]:
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES, policies)
    trust = DevTrustDomain.create("example.org", tmp_path / "trust")
    port = free_port()
    proxy_ports = [free_port() for _ in range(PROXY_PORT_AUDIENCES)]
    settings = Settings(
        port=port,
        data_dir=tmp_path / "data",
        policies_dir=policies,
        trust_domains=(TrustDomainConfig("example.org", trust.bundle_path),),
        audiences=tuple(f"http://127.0.0.1:{p}/mcp" for p in proxy_ports),
    )
    w = Warden(settings)
    token_file = w.operators.bootstrap(settings.data_dir)
    assert token_file is not None
    admin = {"Authorization": f"Bearer {token_file.read_text().strip()}"}
    with ThreadServer(create_app(w), port) as server:
        yield LiveWarden(w, server.url, trust, admin, tmp_path, proxy_ports)


@pytest.fixture
def live_warden(tmp_path: Path) -> Iterator[LiveWarden]:
    with running_warden(tmp_path) as live:
        yield live


@pytest.fixture(scope="module")
def shared_warden(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveWarden]:
    """One Warden for a whole module, for tests that only read (register distinct agents)."""
    with running_warden(tmp_path_factory.mktemp("warden")) as live:
        yield live


def helpdesk_upstream(name: str = "helpdesk", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "command": [sys.executable, "-m", "warden.examples.mcp_helpdesk"],
        **extra,
    }


def write_proxy_config(path: Path, **config: Any) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(config))
    return path


def proxy_command(config: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "warden.cli.main", "mcp-proxy", "--config", str(config), *extra]
