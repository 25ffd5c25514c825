"""A real Warden server process for the demo (and for tests that need one): ``warden serve
--dev`` on a free port with its own data folder, waited for until ready, stopped cleanly."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    url: str
    data_dir: Path
    log_file: Path

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the server exited with code {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                response = httpx.get(f"{self.url}/readyz", timeout=1.0)
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code}: {response.text[:200]}"
            except httpx.HTTPError as exc:
                last = str(exc) or type(exc).__name__
            time.sleep(0.1)
        raise RuntimeError(
            f"the server was not ready after {timeout:.0f} s ({last}):\n{self.log_tail()}"
        )

    def stop(self) -> int | None:
        """Ctrl-C (clean shutdown), then terminate, then kill."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.terminate()
                try:
                    self.process.wait(5)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(5)
        return self.process.returncode


def server_command(port: int, data_dir: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "warden.cli.main",
        "serve",
        "--dev",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
    ]


@contextmanager
def demo_server(keep: bool) -> Iterator[ServerProcess]:
    data_dir = Path(tempfile.mkdtemp(prefix="warden-demo-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
    log_file = data_dir / "server.log"
    with log_file.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603  (our own interpreter and module)
            server_command(port, data_dir),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=data_dir,
            start_new_session=True,  # Ctrl-C reaches the demo, which stops the server itself
        )
    server = ServerProcess(process, f"http://127.0.0.1:{port}", data_dir, log_file)
    kept = False
    try:
        yield server
        kept = keep and process.poll() is None
    finally:
        if not kept:
            server.stop()
            shutil.rmtree(data_dir, ignore_errors=True)
