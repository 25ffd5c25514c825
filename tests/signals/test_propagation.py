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


def test_mcp_proxy_follows_a_shared_signals_stream(world: World) -> None:
    from warden.mcp.config import parse_proxy_config
    from warden.mcp.signals import SignalFollower
    from warden.sdk.signals import SignalReceiver

    r = world.client.post(
        "/ssf/streams",
        json={"delivery": {"method": "urn:ietf:rfc:8936"}, "aud": "mcp-proxy"},
        headers=world.admin,
    )
    stream = r.json()
    config = parse_proxy_config(
        {
            "warden": {"url": "http://127.0.0.1:8080"},
            "upstreams": [{"name": "x", "command": ["true"]}],
            "signals": {
                "poll_url": stream["delivery"]["endpoint_url"],
                "poll_token": stream["poll_token"],
                "audience": "mcp-proxy",
            },
        }
    )
    assert config.signals is not None
    assert "poll_token" not in repr(config.signals)
    world.register()
    task = world.start_task()
    check, issuer = embedded_check(world.warden, world.warden.settings.effective_issuer)
    receiver = SignalReceiver(issuer, world.warden.keys.jwks(), audience="mcp-proxy")
    receiver.on_session_revoked(check.session_revoked)
    follower = SignalFollower(config.signals, receiver, http=world.client)
    asyncio.run(check.verify(task["access_token"]))
    world.client.post(f"/v1/tasks/{task['task_id']}/complete", headers=world.admin)
    world.warden.writer.flush()
    world.warden.signals.tick()
    assert follower.once() == 1
    with pytest.raises(TokenRevokedError):
        asyncio.run(check.verify(task["access_token"]))


@pytest.mark.parametrize(
    "signals",
    [
        "yes",
        {"poll_url": "ftp://x", "poll_token": "t"},
        {"poll_url": "http://w/ssf/poll/s"},
        {"poll_url": "http://w/ssf/poll/s", "poll_token": "t", "interval": 0},
        {"poll_url": "http://w/ssf/poll/s", "poll_token": "t", "extra": 1},
    ],
)
def test_mcp_proxy_signals_config_is_checked(signals: object) -> None:
    from warden.errors import InvalidParameterError
    from warden.mcp.config import parse_proxy_config

    with pytest.raises(InvalidParameterError):
        parse_proxy_config(
            {
                "warden": {"url": "http://127.0.0.1:8080"},
                "upstreams": [{"name": "x", "command": ["true"]}],
                "signals": signals,
            }
        )
