"""The local workload API over a real Unix socket, called by real processes: attestation from
the kernel, entries, the SVID exchanged for a task, and the pid-reuse guard."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import JWT_TYPE, World
from warden.attestation.unix import PeerCredentials, attest_peer
from warden.cli.serve import WorkloadSocketServer
from warden.errors import AttestationError

pytestmark = pytest.mark.attestation

PYTHON = os.path.realpath(sys.executable)
CALLER = (
    "import json, sys; from warden.cli.identity import fetch_svid, WorkloadAPIError\n"
    "try:\n    print(json.dumps(fetch_svid(sys.argv[1])))\n"
    "except WorkloadAPIError as e:\n    print(json.dumps({'error': str(e), 'reason': e.reason}))"
)


@pytest.fixture
def socket_path(world: World) -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="wsock", dir="/tmp"))  # sun_path is short
    server = WorkloadSocketServer(world.warden, directory / "w.sock")
    deadline = time.monotonic() + 10
    while not (directory / "w.sock").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield directory / "w.sock"
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def call(socket_path: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", CALLER, str(socket_path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def test_unmatched_process_is_refused_and_audited(world: World, socket_path: Path) -> None:
    world.register("support-bot")
    answer = call(socket_path)
    assert answer["reason"] == "unknown_agent"
    refused = world.audit("workload.refused")[-1]["data"]
    assert refused["reason"] == "unknown_agent"
    assert refused["caller"]["uid"] == os.getuid()
    assert refused["caller"]["path"] == PYTHON
    assert len(refused["caller"]["sha256"]) == 64


def test_matched_process_gets_an_svid_and_starts_a_task(world: World, socket_path: Path) -> None:
    world.register("support-bot")
    r = world.client.post(
        "/v1/agents/support-bot/entries",
        json={"selectors": [f"unix:uid:{os.getuid()}", f"unix:path:{PYTHON}"]},
        headers=world.admin,
    )
    assert r.status_code == 201, r.text
    entry = r.json()["id"]
    answer = call(socket_path)
    assert answer["spiffe_id"] == "spiffe://warden.local/agent/support-bot"
    assert answer["entry"] == entry
    bundle = world.client.get("/.well-known/spiffe-bundle").json()
    assert [k["use"] for k in bundle["keys"]] == ["jwt-svid"]

    r = world.exchange(answer["svid"])
    assert r.status_code == 200, r.text
    task = world.client.get(f"/v1/tasks/{r.json()['task_id']}", headers=world.admin).json()
    att = task["attestation"]
    assert task["agent"] == "support-bot"
    assert att["method"] == "unix" and att["via"] == "workload_api"
    assert att["entry"]["id"] == entry
    assert att["selectors"] == sorted([f"unix:path:{PYTHON}", f"unix:uid:{os.getuid()}"])
    issued = world.audit("workload.svid_issued")[-1]["data"]
    assert issued["evidence_hash"] == att["evidence_hash"]
    assert answer["svid"] not in json.dumps(world.audit())

    # a different executable digest does not match an entry pinned to another binary
    world.client.delete(f"/v1/agents/support-bot/entries/{entry}", headers=world.admin)
    world.client.post(
        "/v1/agents/support-bot/entries",
        json={"selectors": [f"unix:uid:{os.getuid()}", f"unix:sha256:{'0' * 64}"]},
        headers=world.admin,
    )
    assert call(socket_path)["reason"] == "unknown_agent"


def test_a_forged_warden_svid_is_refused(world: World, socket_path: Path) -> None:
    world.register("support-bot")
    forged = world.trust.mint(
        "spiffe://warden.local/agent/support-bot", "warden", extra_claims={"wat": {}}
    )
    r = world.exchange(forged)
    assert r.status_code == 400
    refused = world.audit("task.refused")[-1]["data"]
    assert refused["reason"] == "unknown_key"


def test_peer_that_exits_mid_attestation_is_refused(world: World, socket_path: Path) -> None:
    """The pid-reuse race: the caller is gone by the time /proc is read. Its pidfd says so,
    whatever process the pid may belong to by then."""
    world.register("support-bot")
    world.client.post(
        "/v1/agents/support-bot/entries",
        json={"selectors": [f"unix:uid:{os.getuid()}"]},
        headers=world.admin,
    )
    caller = subprocess.Popen(
        [sys.executable, "-c", CALLER, str(socket_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )

    def kill_the_peer(peer: PeerCredentials) -> None:
        assert peer.pid == caller.pid
        caller.kill()
        caller.wait(10)  # reaped: the pid is free for reuse from here on

    world.warden.workload.inspecting = kill_the_peer
    try:
        deadline = time.monotonic() + 20
        while not world.audit("workload.") and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        world.warden.workload.inspecting = None
        caller.kill()
        caller.wait(10)
    records = world.audit("workload.")
    assert [r["type"] for r in records] == ["workload.refused"]
    assert records[0]["data"]["reason"] == "process_exited"
    assert records[0]["data"]["pidfd"] in ("SO_PEERPIDFD", "pidfd_open")


def test_a_process_born_after_the_connection_is_not_the_peer() -> None:
    """What a reused pid looks like: a live process at that pid that started after the
    connection was accepted (the window between SO_PEERCRED and pidfd_open)."""
    connected_at = time.time() - 5
    newcomer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        time.sleep(0.2)
        pidfd = os.pidfd_open(newcomer.pid)
        try:
            late = PeerCredentials(
                newcomer.pid, os.getuid(), os.getgid(), pidfd, connected_at, "pidfd_open"
            )
            with pytest.raises(AttestationError) as info:
                attest_peer(late)
            assert info.value.detail["reason"] == "pid_reused"
            fine = PeerCredentials(
                newcomer.pid, os.getuid(), os.getgid(), pidfd, time.time(), "pidfd_open"
            )
            assert attest_peer(fine).claims["path"] == PYTHON
        finally:
            os.close(pidfd)
    finally:
        newcomer.kill()
        newcomer.wait(10)


def test_agent_identity_cli_prints_the_svid(world: World, socket_path: Path) -> None:
    world.register("support-bot")
    world.client.post(
        "/v1/agents/support-bot/entries",
        json={"selectors": [f"unix:uid:{os.getuid()}", f"unix:path:{PYTHON}"]},
        headers=world.admin,
    )
    out = subprocess.run(
        [sys.executable, "-m", "warden.cli.main", "agent-identity", "--socket", str(socket_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    svid = out.stdout.strip()
    r = world.client.post(
        "/oauth2/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": svid,
            "subject_token_type": JWT_TYPE,
            "scope": "tickets.read",
            "authorization_details": json.dumps([{"type": "agent_task", "purpose": "cli"}]),
        },
    )
    assert r.status_code == 200, r.text
