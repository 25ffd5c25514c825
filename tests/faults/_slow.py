"""Helpers for the slow-client fault tests: a real ``warden serve`` on a private SQLite data
folder, and raw sockets that behave like slowloris clients."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from warden.demo.server import ServerProcess, free_port, server_command

WAIT = 30.0  # a bound on waiting for something the server must do; never a timing assertion


@contextmanager
def server(data_dir: Path, config: dict[str, Any]) -> Iterator[ServerProcess]:
    """``warden serve --dev`` on ``data_dir`` with ``config`` (YAML), stopped afterwards."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config_file = data_dir.parent / f"{data_dir.name}.yaml"
    config_file.write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
    log_file = data_dir.parent / f"{data_dir.name}.log"
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            [*server_command(port, data_dir), "--config", str(config_file)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    running = ServerProcess(process, f"http://127.0.0.1:{port}", data_dir, log_file)
    try:
        running.wait_ready(60.0)
        yield running
    finally:
        running.stop()


def port_of(running: ServerProcess) -> int:
    return int(running.url.rsplit(":", 1)[1])


def open_slowloris(port: int, count: int) -> list[socket.socket]:
    """``count`` connections that each sent the start of a request and never its end."""
    socks = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        socks.append(s)
    return socks


def trickle(socks: list[socket.socket]) -> int:
    """Send one more header byte on every connection still open; returns how many are open."""
    open_ = 0
    for s in socks:
        try:
            s.sendall(b"a")
            open_ += 1
        except OSError:
            pass
    return open_


def still_open(socks: list[socket.socket]) -> int:
    """How many of ``socks`` the server has neither answered nor closed, right now."""
    count = 0
    for s in socks:
        s.setblocking(False)
        try:
            s.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            count += 1  # nothing to read and not closed
        except OSError:
            pass
        finally:
            s.setblocking(True)
    return count


def closed_by_server(s: socket.socket, deadline: float) -> bytes | None:
    """What the server sent before it closed ``s`` (b"" for nothing), or None if it did not
    close it before ``deadline`` (time.monotonic)."""
    received = b""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        s.settimeout(min(remaining, 1.0))
        try:
            chunk = s.recv(65536)
        except TimeoutError:
            try:
                s.sendall(b"a")  # keep trickling, as a slowloris client does
            except OSError:
                return received
            continue
        except OSError:
            return received
        if not chunk:
            return received
        received += chunk


def status_of(response: bytes) -> int | None:
    if not response.startswith(b"HTTP/1.1 "):
        return None
    return int(response[9:12])
