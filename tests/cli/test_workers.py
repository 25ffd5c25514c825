"""``warden serve --workers 2``: two real worker processes on one port behave as one server
(ADR 0142), on SQLite (the polled change log) and on PostgreSQL (LISTEN/NOTIFY)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import pytest
import yaml

from tests.lifecycle.waiting import eventually
from warden.cli.cluster import (
    ReplicaClient,
    dev_svid,
    postgres_unreachable,
    postgres_url,
    temporary_schema,
)
from warden.demo.server import ServerProcess, free_port, server_command

pytestmark = [pytest.mark.slow]

AGENT = "spiffe://example.org/agent"
T = TypeVar("T")


class WorkerClient(ReplicaClient):
    """A client whose connection is accepted by one particular worker."""

    def __init__(self, url: str, token: str, worker: str) -> None:
        super().__init__(url, token)
        self.worker = worker

    def replica(self) -> str:
        r = self.http.get("/v1/replica", headers=self.admin)
        r.raise_for_status()
        return str(r.json()["id"])

    def on_it(self, call: Callable[[], T]) -> T:
        """``call`` on this worker: checked just before and after on the same connection (a
        connection the server closed while idle would reconnect to either worker)."""
        for _ in range(50):
            if self.replica() == self.worker:
                result = call()
                if self.replica() == self.worker:
                    return result
            self.http.close()
            self.http = type(self.http)(base_url=self.url, timeout=10.0)
        raise AssertionError(f"never reached worker {self.worker} again")


def pinned(url: str, token: str) -> tuple[WorkerClient, WorkerClient]:
    """Clients on two different workers: new connections until both have answered."""
    seen: dict[str, WorkerClient] = {}
    for _ in range(200):
        probe = ReplicaClient(url, token)
        r = probe.http.get("/v1/replica", headers=probe.admin)
        worker = str(r.json()["id"])
        if worker in seen:
            probe.close()
            continue
        client = WorkerClient(url, token, worker)
        client.http.close()
        client.http = probe.http  # keep the connection that worker accepted
        seen[worker] = client
        if len(seen) == 2:
            a, b = seen.values()
            return a, b
    raise AssertionError(f"200 connections reached {len(seen)} worker(s)")


@contextmanager
def serve_workers(root: Path, database_url: str | None) -> Iterator[ServerProcess]:
    data = root / "data"
    data.mkdir(parents=True)
    port = free_port()
    config = {
        "server": {"issuer": f"http://127.0.0.1:{port}"},
        "replication": {"resync_interval": "1m", "heartbeat_interval": "1s"},
    }
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    command = [*server_command(port, data), "--workers", "2", "--config", str(root / "config.yaml")]
    if database_url is not None:
        command += ["--database-url", database_url]
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
    log_file = root / "server.log"
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
    server = ServerProcess(process, f"http://127.0.0.1:{port}", data, log_file)
    try:
        server.wait_ready(120)
        # the line comes once both workers listen: the second loads its state after the first
        eventually(lambda: "workers             2 processes" in server.log_tail(400), "2 up", 120)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    base = postgres_url()
    error = postgres_unreachable(base)
    if error is not None:
        pytest.skip(f"PostgreSQL not reachable at {base}: {error}")
    with temporary_schema(base, "wt_workers") as url:
        yield url


def _worker_pids(log: str) -> list[int]:
    line = next(x for x in log.splitlines() if "workers             2 processes" in x)
    inside = line.split("(pids ", 1)[1].split(")", 1)[0]
    return [int(p) for p in inside.split(", ")]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_two_workers_decide_and_follow_each_other(tmp_path: Path, database: str | None) -> None:
    with serve_workers(tmp_path, database) as server:
        token = (server.data_dir / "admin.token").read_text().strip()
        a, b = pinned(server.url, token)
        assert a.worker != b.worker
        a.on_it(lambda: a.register("alpha", ["tickets.read", "data.read"]))
        svid = dev_svid(server.data_dir, "alpha")
        task = a.on_it(lambda: a.start_task(svid, "tickets.read"))
        credential = task["access_token"]
        spiffe = f"{AGENT}/alpha"
        # B never saw the agent or the task start: it learns them from the feed or the database
        for worker in (a, b):
            assert worker.on_it(lambda w=worker: w.allowed(spiffe, credential, "tickets.read"))
            assert not worker.on_it(lambda w=worker: w.allowed(spiffe, credential, "data.read"))
        revoked = a.on_it(
            lambda: a.admin_post(f"/v1/tasks/{task['task_id']}/revoke", {"reason": "test"})
        )
        assert revoked
        eventually(
            lambda: not b.on_it(lambda: b.allowed(spiffe, credential, "tickets.read")),
            "the revocation through A is a deny on B",
        )
        applied = b.on_it(lambda: b.admin_get("/v1/replica"))["changes_applied"]
        assert applied >= 1
        a.close()
        b.close()
        pids = _worker_pids(server.log_tail(400))
        assert all(_alive(p) for p in pids)
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(60) == 0
        assert not any(_alive(p) for p in pids)


def test_a_worker_that_dies_stops_the_server(tmp_path: Path) -> None:
    """Half a server is not a server: the supervisor stops the other worker and fails."""
    with serve_workers(tmp_path, None) as server:
        first, second = _worker_pids(server.log_tail(400))
        os.kill(second, signal.SIGKILL)
        assert server.process.wait(60) == 1
        deadline = time.monotonic() + 30
        while _alive(first) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(first)
        assert "exited (code -9): stopping the others" in server.log_tail(400)


def test_workers_out_of_range_is_a_clear_error(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from warden.cli.main import app

    args = ["serve", "--data-dir", str(tmp_path), "--port", str(free_port()), "--workers", "0"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0
    assert "--workers must be between 1 and 64, not 0" in result.output
