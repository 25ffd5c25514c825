"""The A2A enforcement point with the official A2A SDK on both sides: an SDK server (the billing
agent) behind ``warden a2a-proxy``, called by the SDK client with a task credential."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import require_module
from tests.enforcement.conftest import (
    JWT_TYPE,
    TOKEN_EXCHANGE,
    LiveWarden,
    ThreadServer,
    write_proxy_config,
)
from warden.demo.server import free_port

pytestmark = pytest.mark.integrity

ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"

A2A_SCOPE = "a2a.skill.invoices.explain a2a.skill.refunds.issue a2a.tasks.get"
ENTITLEMENTS = A2A_SCOPE.split()


@contextmanager
def billing_agent() -> Iterator[str]:
    require_module("a2a.server.routes", "pip install 'a2a-sdk[http-server]'")
    from . import a2a_agent

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    a2a_agent.SEEN.clear()
    with ThreadServer(a2a_agent.app(url), port):
        yield url


@contextmanager
def a2a_proxy(live: LiveWarden, target: str, tmp: Path) -> Iterator[str]:
    """``warden a2a-proxy`` as a real process; returns its JSON-RPC URL."""
    port = live.proxy_ports[3]
    resource = f"http://127.0.0.1:{port}/mcp"  # one of the audiences the live Warden accepts
    config = write_proxy_config(
        tmp / "a2a.yaml",
        warden={"url": live.url},
        target={"name": "billing-agent", "url": target},
        resource=resource,
    )
    command = [sys.executable, "-m", "warden.cli.main", "a2a-proxy", "--config", str(config)]
    log = tmp / "a2a-proxy.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*command, "--port", str(port)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(log.read_text()[-2000:])
            try:
                httpx.get(f"http://127.0.0.1:{port}/.well-known/agent-card.json", timeout=0.5)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the a2a proxy did not start") from None
                time.sleep(0.1)
        yield resource
    finally:
        proc.terminate()
        proc.wait(10)


async def ask(proxy: str, token: str | None, text: str, skill: str | None) -> list[Any]:
    from a2a.client import ClientConfig, create_client
    from a2a.types import Message, Part, Role, SendMessageRequest

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    base = proxy.rsplit("/", 1)[0]
    async with httpx.AsyncClient(headers=headers, timeout=30) as http:
        client = await create_client(base, ClientConfig(httpx_client=http, streaming=False))
        metadata = {"skill": skill} if skill else None
        request = SendMessageRequest(
            message=Message(
                role=Role.ROLE_USER, message_id="m-1", parts=[Part(text=text)], metadata=metadata
            )
        )
        return [event async for event in client.send_message(request)]


def _task(live: LiveWarden, spiffe: str, audience: str, **form: str) -> dict[str, Any]:
    data = {
        "grant_type": TOKEN_EXCHANGE,
        "subject_token": live.svid(spiffe),
        "subject_token_type": JWT_TYPE,
        "scope": A2A_SCOPE,
        "audience": audience,
        "authorization_details": json.dumps(
            [{"type": "agent_task", "purpose": "ask billing", "category": "support"}]
        ),
        **form,
    }
    r = httpx.post(f"{live.url}/oauth2/token", data=data)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_the_sdk_client_reaches_an_sdk_server_through_the_proxy(
    integrity_warden: LiveWarden, tmp_path: Path
) -> None:
    live = integrity_warden
    with billing_agent() as target, a2a_proxy(live, target, tmp_path) as proxy:
        from a2a.client import A2AClientError

        from . import a2a_agent

        base = proxy.rsplit("/", 1)[0]
        card = httpx.get(f"{base}/.well-known/agent-card.json").json()
        assert card["supportedInterfaces"] == [
            {"url": proxy, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}
        ]
        assert card["securitySchemes"]["warden"]["httpAuthSecurityScheme"]["scheme"] == "Bearer"
        assert card["securityRequirements"] == [{"schemes": {"warden": {"list": []}}}]
        assert {s["id"] for s in card["skills"]} == {"invoices.explain", "refunds.issue"}

        spiffe = live.register(entitlements=ENTITLEMENTS)
        task = _task(live, spiffe, proxy)
        events = asyncio.run(ask(proxy, task["access_token"], "INV-7731?", "invoices.explain"))
        assert "echo: INV-7731?" in str(events[0])
        (seen,) = a2a_agent.SEEN
        assert seen["x-warden-agent"] == spiffe and seen["x-warden-task"] == task["task_id"]
        assert "authorization" not in {k.lower() for k in seen}

        with pytest.raises(A2AClientError) as denied:  # in scope, but policy says no
            asyncio.run(ask(proxy, task["access_token"], "refund it", "refunds.issue"))
        assert "denied" in str(denied.value)
        with pytest.raises(A2AClientError):  # no skill named, two on the card: a2a.message.send
            asyncio.run(ask(proxy, task["access_token"], "hi", None))
        assert len(a2a_agent.SEEN) == 1  # nothing denied reached the target

        raw = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {}}
        r = httpx.post(proxy, json=raw)
        assert r.status_code == 401 and "Bearer" in r.headers["www-authenticate"]
        foreign = live.start_task(spiffe, scope="a2a.skill.invoices.explain")  # Warden's audience
        r = httpx.post(
            proxy, json=raw, headers={"Authorization": f"Bearer {foreign['access_token']}"}
        )
        assert r.status_code == 401
        auth = {"Authorization": f"Bearer {task['access_token']}"}
        unknown = httpx.post(proxy, json={**raw, "method": "DoSomethingElse"}, headers=auth)
        assert unknown.json()["error"]["data"]["reason"] == "unmapped_method"
        garbage = httpx.post(
            proxy, content=b"{nope", headers={**auth, "Content-Type": "application/json"}
        )
        assert garbage.status_code == 400 and garbage.json()["error"]["code"] == -32700

    decisions = [
        r["data"] for r in live.audit() if str(r["data"].get("action", "")).startswith("a2a.")
    ]
    assert [d["action"] for d in decisions] == [
        "a2a.skill.invoices.explain",
        "a2a.skill.refunds.issue",
        "a2a.message.send",
    ]


def test_a_delegated_hop_carries_the_chain(integrity_warden: LiveWarden, tmp_path: Path) -> None:
    """A swarm: the orchestrator delegates to the support agent, which asks the billing agent.
    The target is told the whole chain and Warden's decision record names it."""
    live = integrity_warden
    with billing_agent() as target, a2a_proxy(live, target, tmp_path) as proxy:
        from . import a2a_agent

        orchestrator = live.register("orchestrator", entitlements=ENTITLEMENTS)
        support = live.register("support-bot", entitlements=ENTITLEMENTS)
        parent = _task(live, orchestrator, proxy)
        child = _task(
            live,
            support,
            proxy,
            actor_token=parent["access_token"],
            actor_token_type=ACCESS_TOKEN_TYPE,
        )
        asyncio.run(ask(proxy, child["access_token"], "INV-1?", "invoices.explain"))
        (seen,) = a2a_agent.SEEN
        assert seen["x-warden-chain"] == f"{orchestrator},{support}"
    (decision,) = [
        r for r in live.audit() if r["data"].get("action") == "a2a.skill.invoices.explain"
    ]
    assert decision["data"]["chain"] == [orchestrator, support]
