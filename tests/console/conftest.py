"""Fixtures for the console suite: a real ``warden serve``, operators of each role, an agent
kit to make calls, and Debian's Chromium driven by Playwright with every request that would
leave 127.0.0.1 blocked and recorded."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from warden.cli.dev import JWT_TOKEN_TYPE, TOKEN_EXCHANGE
from warden.demo.server import ServerProcess, free_port
from warden.tokens.svid import DevTrustDomain

POLICIES = Path(__file__).parent.parent / "approvals" / "policies"
OWNER = "alice@example.com"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class Console:
    server: ServerProcess
    policies: Path
    admin: str
    approver: str
    auditor: str
    agents: int = 0

    @property
    def url(self) -> str:
        return self.server.url

    def api(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        r = httpx.request(
            method,
            f"{self.url}{path}",
            json=body,
            headers={"Authorization": f"Bearer {token or self.admin}"},
        )
        assert r.status_code < 300, r.text
        return r.json()

    def agent(self, prefix: str) -> tuple[str, str]:
        """A fresh agent owned by OWNER with a live task: (name, spiffe id)."""
        self.agents += 1
        name = f"{prefix}-{self.agents}"
        body = {
            "name": name,
            "owner": OWNER,
            "purpose": "keep the support queue clean",
            "entitlements": ["tickets.read", "tickets.delete", "tickets.purge", "http.get"],
            "groups": ["support"],
        }
        return name, self.api("POST", "/v1/agents", body)["spiffe_id"]

    def task(self, spiffe_id: str, scope: str = "tickets.read tickets.delete tickets.purge") -> str:
        trust = DevTrustDomain.load("example.org", self.server.data_dir / "dev-trust")
        r = httpx.post(
            f"{self.url}/oauth2/token",
            data={
                "grant_type": TOKEN_EXCHANGE,
                "subject_token": trust.mint(spiffe_id, "warden"),
                "subject_token_type": JWT_TOKEN_TYPE,
                "scope": scope,
                "authorization_details": json.dumps(
                    [{"type": "agent_task", "purpose": "clean up the queue", "category": "support"}]
                ),
            },
        )
        assert r.status_code == 200, r.text
        token: str = r.json()["access_token"]
        return token

    def call(self, spiffe_id: str, token: str, tool: str, **context: Any) -> dict[str, Any]:
        r = httpx.post(
            f"{self.url}/access/v1/evaluation",
            json={
                "subject": {"type": "agent", "id": spiffe_id, "properties": {"token": token}},
                "action": {"name": "tools/call"},
                "resource": {"type": "tool", "id": tool},
                "context": context,
            },
        )
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body


def _operator(url: str, admin: str, name: str, role: str, human: str | None = None) -> str:
    body: dict[str, Any] = {"name": name, "role": role}
    if human:
        body["human"] = human
    r = httpx.post(f"{url}/v1/operators", json=body, headers={"Authorization": f"Bearer {admin}"})
    assert r.status_code == 201, r.text
    token: str = r.json()["token"]
    return token


def start_server(tmp: Path, policies: Path) -> ServerProcess:
    """``warden serve --dev`` as a real process on a free port, with its own data folder."""
    data_dir = tmp / "data"
    data_dir.mkdir()
    port = free_port()
    log_file = tmp / "server.log"
    command = [
        sys.executable, "-m", "warden.cli.main", "serve", "--dev",
        "--host", "127.0.0.1", "--port", str(port),
        "--data-dir", str(data_dir), "--policies", str(policies),
    ]  # fmt: skip
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=tmp
        )
    server = ServerProcess(process, f"http://127.0.0.1:{port}", data_dir, log_file)
    try:
        server.wait_ready(timeout=90)  # a loaded CI machine starts slowly
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    tmp = tmp_path_factory.mktemp("console")
    policies = tmp / "policies"
    shutil.copytree(POLICIES, policies)
    server = start_server(tmp, policies)
    try:
        admin = (server.data_dir / "admin.token").read_text().strip()
        yield Console(
            server,
            policies,
            admin,
            _operator(server.url, admin, "alice", "approver", human=OWNER),
            _operator(server.url, admin, "audrey", "auditor"),
        )
    finally:
        server.stop()


# -- the browser --------------------------------------------------------------------------------


@dataclass
class Guard:
    """Every request the browser made, and those it was stopped from sending off-machine."""

    seen: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)


@pytest.fixture(scope="session")
def chromium() -> Path:
    if CHROMIUM.is_file():
        return CHROMIUM
    reason = f"{CHROMIUM} is missing (Debian's `chromium` package; .ci/run installs it)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
def browser(chromium: Path, tmp_path: Path) -> Iterator[tuple[Any, Guard]]:
    """A fresh Chromium profile; requests to anything but 127.0.0.1 are aborted and recorded."""
    from playwright.sync_api import sync_playwright

    guard = Guard()

    def route(r: Any) -> None:
        url = r.request.url
        guard.seen.append(url)
        if urlsplit(url).hostname == "127.0.0.1" or url.startswith(("data:", "blob:")):
            r.continue_()
        else:
            guard.blocked.append(url)
            r.abort()

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=str(chromium),
            headless=True,
            args=CHROMIUM_ARGS,
            service_workers="block",
            viewport={"width": 1280, "height": 800},
        )
        try:
            context.route("**/*", route)
            # record browser notifications instead of showing them
            context.add_init_script(
                "window.__notes = [];"
                "window.Notification = class { static permission = 'granted';"
                " static requestPermission() { return Promise.resolve('granted'); }"
                " constructor(title, options) { window.__notes.push(title); } };"
            )
            yield context, guard
        finally:
            context.close()


def sign_in(context: Any, url: str, token: str, page_path: str = "/console/approvals") -> Any:
    page = context.pages[0] if context.pages else context.new_page()
    page.goto(f"{url}/console/login")
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/console/approvals")
    if page_path != "/console/approvals":
        page.goto(f"{url}{page_path}")
    page.wait_for_selector("body[data-ready=true]", state="attached")
    return page
