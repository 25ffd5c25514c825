"""Bad input through the stdio proxy, on the wire (no SDK to tidy it up): each gets the
JSON-RPC error the binding prescribes, nothing reaches an upstream, the proxy stays up."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from .conftest import LiveWarden, helpdesk_upstream, needs_mcp, proxy_command, write_proxy_config

pytestmark = [pytest.mark.enforcement, needs_mcp]


class Wire:
    """A proxy process driven line by line."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.lines: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def send_raw(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send(self, message: Any) -> None:
        self.send_raw(json.dumps(message).encode() + b"\n")

    def receive(self, timeout: float = 20) -> dict[str, Any]:
        answer: dict[str, Any] = json.loads(self.lines.get(timeout=timeout))
        return answer

    def call(self, method: str, params: Any = None, id: Any = 1) -> dict[str, Any]:
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        return self.receive()


INITIALIZE = {
    "protocolVersion": "2025-11-25",
    "capabilities": {},
    "clientInfo": {"name": "t", "version": "0"},
}


@contextmanager
def spawned(config: Path, token: str | None = None) -> Iterator[Wire]:
    """A ``warden mcp-proxy`` process (credential in its environment when given)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
    if token is not None:
        env["WARDEN_TASK_CREDENTIAL"] = token
    proc = subprocess.Popen(
        proxy_command(config), stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
    )
    try:
        yield Wire(proc)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture(scope="module")
def wire(shared_warden: LiveWarden, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wire]:
    """One proxy for the module: every test below also proves it is still up."""
    spiffe = shared_warden.register("wire-bot")
    task = shared_warden.start_task(spiffe)
    config = write_proxy_config(
        tmp_path_factory.mktemp("wire") / "proxy.yaml",
        warden={"url": shared_warden.url},
        limits={"max_argument_bytes": 1024},
        upstreams=[helpdesk_upstream()],
    )
    with spawned(config, task["access_token"]) as w:
        init = w.call("initialize", INITIALIZE, id=0)
        assert init["result"]["serverInfo"]["name"] == "warden-mcp-proxy", init
        w.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        yield w


def code(answer: dict[str, Any]) -> int:
    return int(answer["error"]["code"])


def test_malformed_messages(wire: Wire) -> None:
    wire.send_raw(b"{this is not json\n")
    assert code(wire.receive()) == -32700
    wire.send([{"jsonrpc": "2.0", "id": 1, "method": "ping"}])  # JSON-RPC batch
    answer = wire.receive()
    assert code(answer) == -32600 and "batch" in answer["error"]["message"]
    wire.send({"id": 2, "method": "ping"})  # no jsonrpc member
    assert code(wire.receive()) == -32600
    wire.send({"jsonrpc": "2.0", "id": {"an": "object"}, "method": "ping"})
    assert code(wire.receive()) == -32600
    assert code(wire.call("tools/call", params=["not", "an", "object"])) == -32602
    # the proxy still serves
    assert wire.call("ping", id=9) == {"jsonrpc": "2.0", "id": 9, "result": {}}


def test_unknown_methods_are_denied(wire: Wire) -> None:
    for method in ("tasks/get", "sampling/createMessage", "admin/shutdown", "completion/complete"):
        answer = wire.call(method, {})
        assert code(answer) == -32001, answer
        assert answer["error"]["data"]["reason"] == "unmapped_method"
    # the 2026-07-28 probe is "method not found", so clients fall back to initialize
    assert code(wire.call("server/discover", {})) == -32601


def test_oversized_arguments_are_refused(wire: Wire) -> None:
    answer = wire.call("tools/call", {"name": "tickets.read", "arguments": {"ticket": "x" * 5000}})
    assert code(answer) == -32602 and "larger than 1024 bytes" in answer["error"]["message"]


@pytest.mark.parametrize(
    "name",
    [
        "../etc/passwd",
        "tools/../tickets.read",
        'Action::"tickets.read"',
        'tickets.read" || true',
        "tickets read",
        "..",
        "",
        "x" * 200,
        42,
        None,
    ],
)
def test_tool_names_with_path_or_cedar_syntax_are_refused(wire: Wire, name: Any) -> None:
    answer = wire.call("tools/call", {"name": name, "arguments": {}})
    assert code(answer) == -32602, answer


def test_an_unknown_tool_is_decided_before_it_is_looked_up(wire: Wire) -> None:
    # not in the scope: a deny, which says nothing about whether the tool exists
    answer = wire.call("tools/call", {"name": "secret.tool", "arguments": {}})
    assert code(answer) == -32001 and answer["error"]["data"]["reason"] == "out_of_scope"


def plain_config(live: LiveWarden, tmp_path: Path) -> Path:
    return write_proxy_config(
        tmp_path / "proxy.yaml", warden={"url": live.url}, upstreams=[helpdesk_upstream()]
    )


def test_requests_before_initialize_are_refused(shared_warden: LiveWarden, tmp_path: Path) -> None:
    with spawned(plain_config(shared_warden, tmp_path)) as w:
        assert code(w.call("tools/list", {})) == -32600


def test_no_credential_lists_nothing_and_calls_nothing(
    shared_warden: LiveWarden, tmp_path: Path
) -> None:
    with spawned(plain_config(shared_warden, tmp_path)) as w:
        w.call("initialize", INITIALIZE)
        assert w.call("tools/list", {}, id=2)["result"]["tools"] == []
        answer = w.call("tools/call", {"name": "tickets.read", "arguments": {}}, id=3)
        assert code(answer) == -32001 and answer["error"]["data"]["reason"] == "missing_credential"
