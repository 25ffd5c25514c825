"""A real ``warden serve`` process for the HTTP benchmarks (P8, P12, the peer comparison).

``WardenServe`` writes a config file naming the data dir, the policy folder and a dev SPIFFE
trust domain, starts ``warden serve --config`` from this interpreter's environment (the
project's venv), optionally pinned to one CPU, waits for ``/readyz`` and stops the process with
SIGTERM on exit. ``exchange`` gets a task credential the way an agent does (an SVID through
``POST /oauth2/token``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

from bench import _common as c


def warden_command() -> list[str]:
    warden_bin = Path(sys.executable).with_name("warden")
    if warden_bin.exists():
        return [str(warden_bin)]
    return [sys.executable, "-c", "from warden.cli.main import main; main()"]


def pinned(cpu: int) -> Any:
    """A ``preexec_fn`` pinning the child (and every thread it starts) to ``cpu``; None if < 0."""
    if cpu < 0:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


class ServerNotReadyError(RuntimeError):
    pass


class ServerProcess:
    """A server subprocess on a loopback port: ``with`` starts it, waits until ``health``
    answers 200 and stops it (SIGTERM, then SIGKILL) on exit. Subclasses set the command."""

    health = "/readyz"
    name = "server"

    def __init__(self, root: Path, *, cpu: int = -1, timeout: float = 240) -> None:
        self.root, self.cpu, self.timeout = root, cpu, timeout
        self.port = c.free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = root / f"{self.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_s = float("nan")

    def command(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str] | None:
        return None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def __enter__(self) -> Self:
        log = self.log_path.open("wb")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            self.command(),
            cwd=self.root,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env(),
            preexec_fn=pinned(self.cpu),  # affinity only, set before exec
        )
        log.close()
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self.startup_s = time.perf_counter() - t0
        return self

    def _wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + self.timeout
        with httpx.Client(base_url=self.base, timeout=30) as client:
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    if client.get(self.health).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
        tail = self.log_path.read_text(errors="replace")[-3000:]
        raise ServerNotReadyError(f"{self.name} did not become ready; its log:\n{tail}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class WardenServe(ServerProcess):
    """``warden serve --config`` on a data dir and a policy folder, trusting ``bundle``."""

    name = "warden"

    def __init__(
        self,
        root: Path,
        data_dir: Path,
        policies: Path,
        bundle: Path,
        *,
        cpu: int = -1,
        timeout: float = 240,
    ) -> None:
        super().__init__(root, cpu=cpu, timeout=timeout)
        self.config = root / "warden.yaml"
        self.config.write_text(
            json.dumps(  # JSON is YAML
                {
                    "server": {
                        "host": "127.0.0.1",
                        "port": self.port,
                        "data_dir": str(data_dir),
                        "policies": str(policies),
                    },
                    "spiffe": {
                        "audience": c.SVID_AUDIENCE,
                        "trust_domains": {c.TRUST_DOMAIN: {"bundle_file": str(bundle)}},
                    },
                }
            )
        )

    def command(self) -> list[str]:
        return [*warden_command(), "serve", "--config", str(self.config)]


def exchange(client: httpx.Client, trust: Any, spiffe_id: str, scope: str) -> str:
    """A task credential for ``spiffe_id`` with ``scope``, as an agent gets one."""
    r = client.post(
        "/oauth2/token",
        data={
            "grant_type": c.TOKEN_EXCHANGE,
            "subject_token": trust.mint(spiffe_id, c.SVID_AUDIENCE),
            "subject_token_type": c.JWT_TYPE,
            "scope": scope,
            "authorization_details": json.dumps(
                [{"type": "agent_task", "purpose": "bench", "category": "support"}]
            ),
        },
    )
    if r.status_code != 200:
        raise RuntimeError(f"token exchange for {spiffe_id} failed: {r.status_code} {r.text}")
    return str(r.json()["access_token"])
