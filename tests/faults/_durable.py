"""Helpers for the durability faults: a real ``warden serve``, load that records what was
acknowledged, a private PostgreSQL, a loop-mounted ext4 disk, and the audit log read back."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import require_program
from warden.cli.client import admin_token_path
from warden.cli.dev import DEV_TRUST_DOMAIN, JWT_TOKEN_TYPE, TOKEN_EXCHANGE, dev_trust_dir
from warden.cli.serve import EXAMPLE_AGENT
from warden.demo.server import ServerProcess, free_port, server_command
from warden.demo.story import TASK_DETAILS
from warden.storage.sql import open_store, sqlite_url_for
from warden.tokens.svid import DevTrustDomain

# named in every skip of this kind, so that under CI=true the skip is a failure (tests/conftest.py)
LOOP_DISK = "a loop-mounted filesystem"


def poll(condition: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    """``condition()`` until truthy (bounded polling, never a timing assertion)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


# -- the server --------------------------------------------------------------------------------


@dataclass
class Warden:
    """One ``warden serve --dev`` process and what a client needs to talk to it."""

    proc: ServerProcess
    database_url: str | None
    admin: str = ""
    spiffe_id: str = ""

    @property
    def url(self) -> str:
        return self.proc.url

    @property
    def data_dir(self) -> Path:
        return self.proc.data_dir

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10.0)

    def kill9(self) -> None:
        self.proc.process.send_signal(signal.SIGKILL)
        self.proc.process.wait(10)

    def sigterm(self, timeout: float = 30.0) -> int:
        self.proc.process.send_signal(signal.SIGTERM)
        return self.proc.process.wait(timeout)

    def log(self) -> str:
        return self.proc.log_file.read_text(errors="replace")


def spawn(
    tmp: Path,
    data_dir: Path,
    *,
    database_url: str | None = None,
    audit: dict[str, Any] | None = None,
    name: str = "server",
) -> Warden:
    """Start ``warden serve --dev`` (fresh port) and wait until it is ready."""
    data_dir.mkdir(parents=True, exist_ok=True)
    command = server_command(free_port(), data_dir)
    if database_url is not None:
        command += ["--database-url", database_url]
    if audit:
        config = tmp / f"{name}.yaml"
        config.write_text(json.dumps({"audit": audit}))  # JSON is YAML
        command += ["--config", str(config)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
    log_file = tmp / f"{name}.log"
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
    port = command[command.index("--port") + 1]
    proc = ServerProcess(process, f"http://127.0.0.1:{port}", data_dir, log_file)
    try:
        proc.wait_ready(timeout=40)
    except BaseException:
        proc.stop()
        raise
    w = Warden(proc, database_url)
    w.admin = admin_token_path(data_dir).read_text().strip()
    with w.client() as http:
        agent = http.get(
            f"/v1/agents/{EXAMPLE_AGENT['name']}", headers={"Authorization": f"Bearer {w.admin}"}
        )
        agent.raise_for_status()
        w.spiffe_id = agent.json()["spiffe_id"]
    return w


@contextmanager
def running(tmp: Path, data_dir: Path, **kw: Any) -> Iterator[Warden]:
    w = spawn(tmp, data_dir, **kw)
    try:
        yield w
    finally:
        w.proc.stop()


def exchange(http: httpx.Client, w: Warden) -> httpx.Response:
    """One token exchange (a new task and its credential) with a fresh dev JWT-SVID."""
    domain = DevTrustDomain.load(DEV_TRUST_DOMAIN, dev_trust_dir(w.data_dir))
    return http.post(
        "/oauth2/token",
        data={
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": domain.mint(w.spiffe_id, "warden", ttl=300),
            "subject_token_type": JWT_TOKEN_TYPE,
            "scope": "tickets.read",
            "authorization_details": json.dumps(TASK_DETAILS),
        },
    )


def decide(http: httpx.Client, w: Warden, token: str) -> httpx.Response:
    return http.post(
        "/access/v1/evaluation",
        json={
            "subject": {"type": "agent", "id": w.spiffe_id, "properties": {"token": token}},
            "action": {"name": "tools/call"},
            "resource": {"type": "tool", "id": "tickets.read"},
            "context": {"arguments": {"ticket": "T-1"}},
        },
    )


def error_code(response: httpx.Response) -> str | None:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return None


# -- load that remembers what it was told -----------------------------------------------------


@dataclass
class Acked:
    """Everything the server acknowledged (HTTP 200) and every refusal it gave."""

    decisions: set[str] = field(default_factory=set)
    tasks: set[str] = field(default_factory=set)
    refused: list[str] = field(default_factory=list)  # error codes of 4xx/5xx answers
    lock: threading.Lock = field(default_factory=threading.Lock)


class Load:
    """Client threads making decisions (and, some, token exchanges) until stopped."""

    def __init__(self, w: Warden, token: str, *, deciders: int = 4, exchangers: int = 2) -> None:
        self.w, self.token = w, token
        self.acked = Acked()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._decide, daemon=True) for _ in range(deciders)
        ] + [threading.Thread(target=self._exchange, daemon=True) for _ in range(exchangers)]

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(30)

    def _run(
        self, call: Callable[[httpx.Client], httpx.Response], ack: Callable[[Any], None]
    ) -> None:
        with self.w.client() as http:
            while not self._stop.is_set():
                try:
                    response = call(http)
                except httpx.HTTPError:  # killed mid-request: not acknowledged
                    time.sleep(0.02)
                    continue
                if response.status_code == 200:
                    with self.acked.lock:
                        ack(response.json())
                else:
                    with self.acked.lock:
                        self.acked.refused.append(error_code(response) or str(response.status_code))

    def _decide(self) -> None:
        self._run(
            lambda http: decide(http, self.w, self.token),
            lambda body: self.acked.decisions.add(body["context"]["decision_id"]),
        )

    def _exchange(self) -> None:
        self._run(
            lambda http: exchange(http, self.w),
            lambda body: self.acked.tasks.add(body["task_id"]),
        )

    def counts(self) -> tuple[int, int]:
        with self.acked.lock:
            return len(self.acked.decisions), len(self.acked.tasks)


# -- reading the audit log back -----------------------------------------------------------------


@dataclass
class AuditFacts:
    decisions: set[str]
    issued_tasks: set[str]  # tasks with task.started and credential.issued records
    issued_jtis: set[str]  # credentials with an issuance or renewal record
    tasks: set[str]  # every task row
    jtis: set[str]  # every credential row


def audit_facts(database_url: str) -> AuditFacts:
    store = open_store(database_url)
    try:
        decisions: set[str] = set()
        started: set[str] = set()
        issued: set[str] = set()
        jtis: set[str] = set()
        for rec in store.iter_audit():
            if rec.type == "authz.decision" and rec.decision_id:
                decisions.add(rec.decision_id)
            elif rec.type == "task.started" and rec.task_id:
                started.add(rec.task_id)
            elif rec.type in ("credential.issued", "credential.renewed"):
                jtis.add(str(rec.data.get("jti")))
                if rec.type == "credential.issued" and rec.task_id:
                    issued.add(rec.task_id)
        with store.engine.connect() as conn:
            task_rows = {str(r[0]) for r in conn.execute(sa.text("SELECT id FROM tasks"))}
            jti_rows = {str(r[0]) for r in conn.execute(sa.text("SELECT jti FROM credentials"))}
        return AuditFacts(decisions, started & issued, jtis, task_rows, jti_rows)
    finally:
        store.close()


def verify(
    data_dir: Path, database_url: str | None, *extra: str
) -> subprocess.CompletedProcess[str]:
    """``warden audit verify`` as an operator runs it."""
    command = [
        sys.executable,
        "-m",
        "warden.cli.main",
        "audit",
        "verify",
        "--data-dir",
        str(data_dir),
    ]
    if database_url is not None:
        command += ["--database-url", database_url]
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
    return subprocess.run([*command, *extra], capture_output=True, text=True, timeout=120, env=env)


def sqlite_url(data_dir: Path) -> str:
    return sqlite_url_for(data_dir)


# -- a private PostgreSQL -------------------------------------------------------------------------


def _pg_bin(name: str) -> str | None:
    for root in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (root / name).is_file():
            return str(root / name)
    return shutil.which(name)


@contextmanager
def private_postgres(tmp: Path) -> Iterator[str]:
    """A PostgreSQL server of our own (initdb in ``tmp``, a free port), stopped afterwards.

    The shared server on 5432 is never touched. initdb refuses root: run as ``postgres``.
    """
    initdb = require_program(_pg_bin("initdb"), "postgresql initdb")
    pg_ctl = require_program(_pg_bin("pg_ctl"), "postgresql pg_ctl")
    as_user: list[str] = []
    if os.geteuid() == 0:
        runuser = require_program(
            shutil.which("runuser"), "runuser (to run postgresql as postgres)"
        )
        as_user = [runuser, "-u", "postgres", "--"]
    del tmp  # pytest's folders are private to root: the server's own lives under /tmp
    root = Path(tempfile.mkdtemp(prefix="warden-faults-pg-"))
    data, sockets = root / "data", root / "sock"
    sockets.mkdir()
    if as_user:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    port = free_port()
    subprocess.run(
        [*as_user, initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=on"
    subprocess.run(
        [*as_user, pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


# -- a small disk of our own ---------------------------------------------------------------------


def _skip(reason: str) -> None:
    # the phrase LOOP_DISK makes tests/conftest.py turn this skip into a failure under CI=true
    pytest.skip(f"{reason}: the disk faults need {LOOP_DISK} (root and a loop device)")


class LoopDisk:
    """A small ext4 image loop-mounted at ``mount`` (``errors=remount-ro``, no root reserve)."""

    def __init__(self, tmp: Path, size_mb: int = 32) -> None:
        if os.geteuid() != 0:
            _skip("not running as root")
        if not Path("/dev/loop-control").exists():
            _skip("no /dev/loop-control")
        for tool in ("mkfs.ext4", "mount", "umount"):
            if shutil.which(tool) is None:
                _skip(f"`{tool}` is missing")
        self.image = tmp / "disk.img"
        self.mount = tmp / "disk"
        self.mount.mkdir()
        with self.image.open("wb") as f:
            f.truncate(size_mb * 1024 * 1024)
        subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", str(self.image)], check=True)
        done = subprocess.run(
            ["mount", "-o", "loop,errors=remount-ro", str(self.image), str(self.mount)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            _skip(f"cannot loop-mount an image ({done.stderr.strip()})")
        self.device = subprocess.run(
            ["findmnt", "-n", "-o", "SOURCE", str(self.mount)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        self._filler = self.mount / "filler"

    def fill(self) -> None:
        """Write until the filesystem has no free block left (ENOSPC)."""
        chunk = b"\0" * (1 << 16)
        with self._filler.open("ab") as f:
            try:
                while True:
                    f.write(chunk)
                    f.flush()
            except OSError:
                pass
        for i in range(10_000):  # the last blocks, in smaller files
            try:
                (self.mount / f"filler-{i}").write_bytes(b"\0" * 4096)
            except OSError:
                break

    def free(self) -> None:
        self._filler.unlink(missing_ok=True)
        for extra in self.mount.glob("filler-*"):
            extra.unlink()

    def make_read_only(self) -> None:
        """The kernel turns the filesystem read-only under the running server (an ext4 error
        with errors=remount-ro), as a failing disk does; open files stay open."""
        trigger = Path("/sys/fs/ext4") / Path(self.device).name / "trigger_fs_error"
        if not trigger.exists():
            _skip(f"this kernel has no {trigger}")
        trigger.write_text("1")
        poll(lambda: _read_only(self.mount), "the filesystem to turn read-only", 10)

    def close(self) -> None:
        for _ in range(50):
            done = subprocess.run(["umount", str(self.mount)], capture_output=True)
            if done.returncode == 0 or not os.path.ismount(self.mount):
                break
            time.sleep(0.1)
        self.image.unlink(missing_ok=True)


def _read_only(path: Path) -> bool:
    try:
        (path / ".probe").write_text("x")
    except OSError:
        return True
    (path / ".probe").unlink()
    return False
