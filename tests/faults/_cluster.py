"""Helpers of the outage and partition faults (issue 11, items 4 and 5): a private PostgreSQL a
test may stop and start, a TCP proxy it may cut and heal, and real ``warden serve`` replicas.

Nothing here touches the shared PostgreSQL on 5432: the server is our own (initdb into the test's
tmp folder, a free port), run as ``postgres`` when the suite runs as root (initdb refuses root).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.conftest import require_program
from warden.cli.client import admin_token_path
from warden.cli.cluster import dev_svid
from warden.demo.server import ServerProcess, free_port, server_command

POLICIES = Path(__file__).parent.parent / "lifecycle" / "policies"
AGENT = "spiffe://example.org/agent"
MAX_STALENESS = 3.0  # the bound the fault replicas run with (seconds)
# How a replica cut off from its database refuses an agent decision: ``state_stale`` past the
# bound, or — once even the refusal's audit record cannot be made durable within
# ``audit.max_wait`` (durable audit, the default; ADR 0090) — 503 ``audit_unavailable``.
# Both are refusals that name why; neither is a deny for what the replica knows.
CUT_OFF_REFUSALS = frozenset({"state_stale", "audit_unavailable"})


def wait_for(check: Callable[[], bool], what: str, timeout: float = 30.0) -> float:
    """Wait until ``check()`` (a bounded wait, never a timing assertion); seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"never happened within {timeout:.0f} s: {what}")


# -- a private PostgreSQL ------------------------------------------------------------------------


def _pg_bin(name: str) -> str | None:
    for root in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (root / name).is_file():
            return str(root / name)
    return shutil.which(name)


class PrivatePostgres:
    """Our own server in a fresh folder under the system tmp (pytest's tmp folders are private
    to root, where ``postgres`` cannot go); ``stop()`` and ``start()`` it at will."""

    def __init__(self) -> None:
        self._initdb = require_program(_pg_bin("initdb"), "postgresql initdb")
        self._pg_ctl = require_program(_pg_bin("pg_ctl"), "postgresql pg_ctl")
        self._as: list[str] = []
        if os.geteuid() == 0:
            runuser = require_program(shutil.which("runuser"), "runuser (postgresql as postgres)")
            self._as = [runuser, "-u", "postgres", "--"]
        root = self._root = Path(tempfile.mkdtemp(prefix="warden-faults-pg-"))
        root.chmod(0o755)
        self._data, self._sockets, self._log = root / "data", root / "sock", root / "log"
        self._sockets.mkdir()
        if self._as:
            shutil.chown(root, "postgres")
            shutil.chown(self._sockets, "postgres")
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._run(self._initdb, "-D", str(self._data), "-U", "postgres", "--auth=trust")
        self.start()

    def _run(self, *args: str) -> None:
        done = subprocess.run([*self._as, *args], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{Path(args[0]).name} failed: {done.stderr.strip()[-800:]}")

    def start(self) -> None:
        options = f"-p {self.port} -k {self._sockets} -c listen_addresses=127.0.0.1"
        self._run(
            self._pg_ctl, "-D", str(self._data), "-o", options, "-l", str(self._log), "-w", "start"
        )

    def stop(self) -> None:
        """A fast shutdown: every connection is closed, new ones are refused."""
        self._run(self._pg_ctl, "-D", str(self._data), "-m", "fast", "-w", "stop")

    def close(self) -> None:
        subprocess.run(
            [*self._as, self._pg_ctl, "-D", str(self._data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
        )
        shutil.rmtree(self._root, ignore_errors=True)


# -- a TCP proxy that can be cut -----------------------------------------------------------------


class TcpProxy:
    """127.0.0.1:``port`` → 127.0.0.1:``target``. ``cut()`` resets every connection and resets
    every new one at once (a partition); ``heal()`` forwards again."""

    def __init__(self, target: int) -> None:
        self._target = target
        self._cut = False
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = int(self._server.sockets[0].getsockname()[1])

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._cut:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target)
        except OSError:
            writer.transport.abort()
            return
        pair = (writer, up_writer)
        self._pairs.add(pair)
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self._pairs.discard(pair)

    async def _reset_all(self) -> None:
        self._cut = True
        for client, upstream in list(self._pairs):
            client.transport.abort()
            upstream.transport.abort()

    def cut(self) -> None:
        self._call(self._reset_all())

    def heal(self) -> None:
        self._cut = False

    def close(self) -> None:
        self.cut()
        self._server.close()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (OSError, ConnectionError):
        pass
    finally:
        writer.transport.abort()


# -- replicas ------------------------------------------------------------------------------------


def _start_replica(port: int, data_dir: Path, database_url: str, config: Path) -> ServerProcess:
    log_file = data_dir / "replica.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
    command = [*server_command(port, data_dir), "--database-url", database_url]
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            [*command, "--config", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=data_dir,
            start_new_session=True,
        )
    return ServerProcess(process, f"http://127.0.0.1:{port}", data_dir, log_file)


@dataclass
class Decision:
    allowed: bool
    reason: str | None
    sent: float  # time.monotonic() when the request was sent

    @property
    def revoked(self) -> bool:
        """A deny for what the replica knows (revoked, ended, suspended), not for staleness."""
        return not self.allowed and self.reason not in CUT_OFF_REFUSALS


@dataclass
class Replica:
    server: ServerProcess
    admin: dict[str, str]
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.server.url, timeout=10.0)

    @property
    def data_dir(self) -> Path:
        return self.server.data_dir

    def decide(self, agent: str, token: str, tool: str = "tickets.read") -> Decision:
        body = {
            "subject": {"type": "agent", "id": f"{AGENT}/{agent}", "properties": {"token": token}},
            "action": {"name": "tools/call"},
            "resource": {"type": "tool", "id": tool},
            "context": {},
        }
        sent = time.monotonic()
        r = self.http.post("/access/v1/evaluation", json=body)
        if r.status_code == 503 and r.json()["error"]["code"] == "audit_unavailable":
            return Decision(False, "audit_unavailable", sent)
        assert r.status_code == 200, r.text
        out = r.json()
        reason = (out.get("context") or {}).get("reason")
        if not isinstance(reason, str):
            reason = "state_stale" if "state_stale" in r.text else None
        return Decision(bool(out["decision"]), reason, sent)

    def ready(self) -> httpx.Response:
        return self.http.get("/readyz")

    def post(self, path: str, body: Any = None) -> httpx.Response:
        return self.http.post(path, json=body if body is not None else {}, headers=self.admin)

    def get(self, path: str) -> Any:
        r = self.http.get(path, headers=self.admin)
        r.raise_for_status()
        return r.json()

    def start_task(self, agent: str, scope: str = "tickets.read") -> dict[str, Any]:
        data = {
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": dev_svid(self.data_dir, agent),
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "scope": scope,
            "authorization_details": json.dumps(
                [{"type": "agent_task", "purpose": "fault test", "category": "support"}]
            ),
        }
        r = self.http.post("/oauth2/token", data=data)
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()
        return out

    def register(self, name: str) -> None:
        body = {
            "name": name,
            "owner": "alice@example.com",
            "purpose": f"{name} (fault test)",
            "entitlements": ["tickets.read"],
            "groups": ["support"],
        }
        r = self.post("/v1/agents", body)
        assert r.status_code in (200, 201), r.text


@contextmanager
def replicas(root: Path, database_urls: list[str]) -> Iterator[list[Replica]]:
    """One replica per URL, each with its own data folder (copied from the first, which creates
    the operator, the dev trust domain and the key-encryption key)."""
    policies = root / "policies"
    shutil.copytree(POLICIES, policies)
    ports = [free_port() for _ in database_urls]
    config = root / "replicas.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "server": {
                    "policies": str(policies),
                    "policy_reload_interval": "1h",
                    "issuer": f"http://127.0.0.1:{ports[0]}",
                },
                "replication": {
                    "resync_interval": "1h",  # only the bound's own machinery may repair state
                    "heartbeat_interval": "1s",
                    "max_staleness": MAX_STALENESS,
                },
            }
        )
    )
    with ExitStack() as stack:
        servers: list[ServerProcess] = []
        for index, (port, url) in enumerate(zip(ports, database_urls, strict=True)):
            data = root / f"replica-{index}"
            if index:
                shutil.copytree(
                    servers[0].data_dir,
                    data,
                    ignore=shutil.ignore_patterns("*.log", "*.sock", "outage-*"),
                )
            else:
                data.mkdir()
            server = _start_replica(port, data, url, config)
            stack.callback(server.stop)
            server.wait_ready(60)
            servers.append(server)
        token = admin_token_path(servers[0].data_dir).read_text().strip()
        admin = {"Authorization": f"Bearer {token}"}
        out = [Replica(s, admin) for s in servers]
        for replica in out:
            stack.callback(replica.http.close)
        yield out


def jti_of(token: str) -> str:
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims["jti"])


class Load:
    """Decisions on every replica for every (agent, token), on a thread, all recorded."""

    def __init__(self, targets: list[Replica], tokens: dict[str, tuple[str, str]]) -> None:
        self._targets = targets
        self._tokens = tokens  # label -> (agent, token)
        self.seen: list[tuple[int, str, Decision]] = []
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(15)

    def _run(self) -> None:
        while not self._stop.is_set():
            for index, replica in enumerate(self._targets):
                for label, (agent, token) in self._tokens.items():
                    try:
                        self.seen.append((index, label, replica.decide(agent, token)))
                    except (httpx.HTTPError, AssertionError):
                        self.errors += 1

    def allows(self, replica: int, label: str, *, sent_after: float) -> list[Decision]:
        return [
            d
            for i, lab, d in list(self.seen)
            if i == replica and lab == label and d.allowed and d.sent > sent_after
        ]
