"""PEP side: the MCP proxy's credential check honours session-revoked; traceparent travels on."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.api.conftest import World
from warden.errors import TokenRevokedError
from warden.mcp.http import embedded_check
from warden.sdk import WardenClient
from warden.telemetry import incoming_traceparent

pytestmark = pytest.mark.signals

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_mcp_proxy_check_refuses_a_revoked_session(world: World) -> None:
    world.register()
    task = world.start_task()
    check, _ = embedded_check(world.warden, world.warden.settings.effective_issuer)
    cred = asyncio.run(check.verify(task["access_token"]))
    assert cred.task_id == task["task_id"]
    check.session_revoked(task["task_id"], frozenset())
    with pytest.raises(TokenRevokedError):
        asyncio.run(check.verify(task["access_token"]))


def test_sdk_forwards_the_incoming_traceparent() -> None:
    seen: list[str | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("traceparent"))
        return httpx.Response(200, json={"decision": True, "context": {}})

    client = WardenClient("http://warden.test", transport=httpx.MockTransport(answer))
    request = {"subject": {"type": "user", "id": "u"}, "action": {"name": "a"}}
    request["resource"] = {"type": "r", "id": "x"}
    client.evaluate(request)
    token = incoming_traceparent.set(TRACEPARENT)
    try:
        client.evaluate(request)
    finally:
        incoming_traceparent.reset(token)
    assert seen == [None, TRACEPARENT]
