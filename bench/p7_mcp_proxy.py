"""P7: the latency the MCP proxy adds to a tool call (target: ≤ 0.5 ms at the median).

Two stdio paths to the same helpdesk MCP server (``warden.examples.mcp_helpdesk``), measured
interleaved so drift hits both alike:

* direct:  client → server
* proxied: client → ``warden mcp-proxy`` (Warden embedded: the decision runs in the proxy's
  process) → server

The client is a minimal JSON-RPC-over-pipes loop (no SDK overhead on either side), calling
``tickets.read`` with a live task credential. ``overhead`` = p50(proxied) - p50(direct): one more
process hop plus the authorization decision. A second proxy asking a Warden server over HTTP is
measured too, for reference (a network round trip per decision).

    python -m bench.p7_mcp_proxy [--quick] [--calls N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any

import yaml

TARGET_MS = 0.5
HELPDESK = [sys.executable, "-m", "warden.examples.mcp_helpdesk"]
AGENT = {
    "name": "bench-bot",
    "owner": "alice@example.com",
    "purpose": "benchmark the MCP proxy",
    "risk_tier": "low",
    "entitlements": ["tickets.read"],
    "groups": ["support"],
}


class Pipe:
    """A JSON-RPC peer over a subprocess's stdin/stdout, one request at a time."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in: IO[bytes] = self.proc.stdin
        self._out: IO[bytes] = self.proc.stdout
        self._id = 0

    def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self._id += 1
        message = {"jsonrpc": "2.0", "id": self._id, "method": method, "params": params}
        self._in.write(json.dumps(message).encode() + b"\n")
        self._in.flush()
        while True:
            answer: dict[str, Any] = json.loads(self._out.readline())
            if answer.get("id") == self._id:
                return answer

    def notify(self, method: str) -> None:
        self._in.write(json.dumps({"jsonrpc": "2.0", "method": method}).encode() + b"\n")
        self._in.flush()

    def initialize(self) -> None:
        answer = self.call(
            "initialize",
            {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "bench", "version": "0"},
            },
        )
        if "result" not in answer:
            raise RuntimeError(f"initialize failed: {answer}")
        self.notify("notifications/initialized")

    def close(self) -> None:
        self._in.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def _timed(pipe: Pipe, samples: list[float]) -> None:
    start = time.perf_counter()
    answer = pipe.call("tools/call", {"name": "tickets.read", "arguments": {"ticket": "T-1042"}})
    samples.append(time.perf_counter() - start)
    if "result" not in answer or answer["result"].get("isError"):
        raise RuntimeError(f"the benchmark call failed: {answer}")


@contextmanager
def warden_state(root: Path) -> Iterator[tuple[Path, str, str]]:
    """A data folder with an agent and a live task; yields (data dir, issuer, credential)."""
    from warden.cli.serve import example_policies_dir
    from warden.config import Settings, TrustDomainConfig
    from warden.sdk.embedded import EmbeddedPDP
    from warden.tokens.svid import DevTrustDomain

    trust = DevTrustDomain.create("example.org", root / "trust")
    data = root / "data"
    issuer = "http://127.0.0.1:8080"
    settings = Settings(
        data_dir=data,
        policies_dir=example_policies_dir(),
        issuer=issuer,
        trust_domains=(TrustDomainConfig("example.org", trust.bundle_path),),
        task_ttl=3600,
        credential_ttl=3600,
    )
    from warden.bootstrap import Warden

    w = Warden(settings)
    w.start()
    try:
        pdp = EmbeddedPDP(w)
        agent = w.agents.register(dict(AGENT), "bench")
        cred = pdp.exchange(
            trust.mint(agent.spiffe_id, "warden"),
            scope="tickets.read",
            purpose="benchmark",
            category="support",
        )
        yield data, issuer, cred.token
    finally:
        w.close()


@contextmanager
def http_warden(data: Path, issuer: str) -> Iterator[str]:
    """The same state served over HTTP by a Warden in this process (for the remote figure)."""
    import uvicorn

    from warden.api.app import create_app
    from warden.bootstrap import Warden
    from warden.cli.serve import example_policies_dir
    from warden.config import Settings
    from warden.demo.server import free_port

    port = free_port()
    w = Warden(Settings(data_dir=data, policies_dir=example_policies_dir(), issuer=issuer))
    server = uvicorn.Server(
        uvicorn.Config(create_app(w), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def proxy(config: dict[str, Any], root: Path, name: str, env: dict[str, str]) -> Pipe:
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "warden.cli.main", "mcp-proxy", "--config", str(path)]
    return Pipe(command, env)


def p50_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="P7: MCP proxy overhead per tool call")
    parser.add_argument("--quick", action="store_true", help="fewer calls (a smoke run)")
    parser.add_argument("--calls", type=int, default=None, help="timed calls per path")
    args = parser.parse_args(argv)
    calls = args.calls or (200 if args.quick else 2000)
    warmup = max(20, calls // 10)
    root = Path(tempfile.mkdtemp(prefix="warden-bench-p7-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
    try:
        with ExitStack() as stack:
            data, issuer, token = stack.enter_context(warden_state(root))
            url = stack.enter_context(http_warden(data, issuer))
            proxy_env = {**env, "WARDEN_TASK_CREDENTIAL": token}
            upstream = [{"name": "helpdesk", "command": HELPDESK}]
            direct = Pipe(HELPDESK, env)
            embedded = proxy(
                {
                    "warden": {
                        "embedded": {
                            "data_dir": str(data),
                            "policies": str(_policies()),
                            "issuer": issuer,
                        }
                    },
                    "upstreams": upstream,
                },
                root,
                "embedded",
                proxy_env,
            )
            remote = proxy(
                {"warden": {"url": url}, "upstreams": upstream}, root, "remote", proxy_env
            )
            pipes = {"direct": direct, "embedded": embedded, "remote": remote}
            for pipe in pipes.values():
                stack.callback(pipe.close)
                pipe.initialize()
            samples: dict[str, list[float]] = {name: [] for name in pipes}
            for _ in range(warmup):
                for pipe in pipes.values():
                    _timed(pipe, [])
            for _ in range(calls):
                for name, pipe in pipes.items():
                    _timed(pipe, samples[name])
        d, e, r = (p50_ms(samples[n]) for n in ("direct", "embedded", "remote"))
        print(f"calls={calls} per path, interleaved; stdio both sides; tool tickets.read")
        print(
            f"direct p50={d:.3f}ms  proxied(embedded PDP) p50={e:.3f}ms  "
            f"proxied(HTTP PDP) p50={r:.3f}ms"
        )
        print(f"P7 reference: mcp-proxy with a remote PDP overhead={r - d:.3f}ms")
        print(f"P7: mcp-proxy overhead={e - d:.3f}ms target={TARGET_MS:g}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


def run() -> None:
    """Entry point for ``python -m bench`` (honours its ``--quick``)."""
    from bench import _common

    main(["--quick"] if _common.QUICK else [])


def _policies() -> Path:
    from warden.cli.serve import example_policies_dir

    return example_policies_dir()


if __name__ == "__main__":
    raise SystemExit(main())
