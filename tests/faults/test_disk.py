"""A full and a read-only disk under the SQLite data folder: refused loudly with
audit_unavailable, nothing acknowledged lost, recovery by itself (issue 11 item 2)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.faults._durable import (
    Load,
    LoopDisk,
    Warden,
    audit_facts,
    decide,
    error_code,
    exchange,
    poll,
    spawn,
    sqlite_url,
    verify,
)

pytestmark = pytest.mark.faults

AUDIT = {"max_wait": "1s"}


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[LoopDisk]:
    d = LoopDisk(tmp_path)
    try:
        yield d
    finally:
        d.close()


def _refused(w: Warden, http: httpx.Client, token: str) -> bool:
    r = decide(http, w, token)
    return r.status_code == 503 and error_code(r) == "audit_unavailable"


def _metric(http: httpx.Client, name: str) -> float:
    text = http.get("/metrics").text
    found = re.search(rf"^{name} (\S+)$", text, re.M)
    assert found, f"{name} not in /metrics"
    return float(found.group(1))


def test_a_full_disk_refuses_with_audit_unavailable_and_recovers(
    tmp_path: Path, disk: LoopDisk
) -> None:
    data = disk.mount / "data"
    w = spawn(tmp_path, data, audit=AUDIT)
    try:
        with w.client() as http:
            first = exchange(http, w)
            token = first.json()["access_token"]
            with Load(w, token, deciders=2, exchangers=1) as load:
                poll(lambda: load.counts()[0] >= 50, "traffic before the fault")
                disk.fill()
                poll(lambda: _refused(w, http, token), "decisions refused with audit_unavailable")
                ready = http.get("/readyz")
                assert ready.status_code == 503
                assert ready.json()["reason"] == "audit_unavailable"
                assert _metric(http, "warden_audit_available") == 0
                assert _metric(http, "warden_audit_write_failures_total") > 0
                refused = exchange(http, w)  # a token exchange is refused as well
                assert refused.status_code == 503, refused.text
                disk.free()
                poll(lambda: decide(http, w, token).status_code == 200, "decisions again")
                poll(lambda: http.get("/readyz").status_code == 200, "ready again")
                assert _metric(http, "warden_audit_available") == 1
            assert "audit_unavailable" in load.acked.refused
        assert "audit unavailable" in w.log()
    finally:
        w.proc.stop()
    facts = audit_facts(sqlite_url(data))
    assert not load.acked.decisions - facts.decisions
    assert not load.acked.tasks - facts.issued_tasks
    assert not facts.tasks - facts.issued_tasks
    assert verify(data, None).returncode == 0


def test_a_read_only_disk_refuses_and_sigterm_names_what_was_not_written(
    tmp_path: Path, disk: LoopDisk
) -> None:
    data = disk.mount / "data"
    w = spawn(tmp_path, data, audit=AUDIT)
    try:
        with w.client() as http:
            token = exchange(http, w).json()["access_token"]
            with Load(w, token, deciders=3, exchangers=1) as load:
                poll(lambda: load.counts()[0] >= 50, "traffic before the fault")
                disk.make_read_only()
                poll(lambda: _refused(w, http, token), "decisions refused with audit_unavailable")
                ready = http.get("/readyz")
                assert ready.status_code == 503
                assert ready.json()["reason"] == "audit_unavailable"
        code = w.sigterm()
    finally:
        w.proc.stop()
    log = w.log()
    lost = re.search(r"audit: (\d+) record\(s\) could not be written before shutdown", log)
    if lost is None:
        # every queued record reached the database before SIGTERM (the last batch committed
        # before the remount took effect): nothing was lost, so nothing to name — a clean stop
        assert "not written" not in log, log[-3000:]
        assert code == 0
    else:
        assert code != 0
        assert f"Warden stopped with {lost.group(1)} audit record(s) not written" in log

    copy = tmp_path / "copy"  # what the read-only disk holds, read back elsewhere
    copy.mkdir()
    for name in ("warden.db", "warden.db-wal"):
        if (data / name).exists():
            shutil.copy(data / name, copy / name)
    facts = audit_facts(sqlite_url(copy))
    assert not load.acked.decisions - facts.decisions
    assert not load.acked.tasks - facts.issued_tasks
    assert not facts.tasks - facts.issued_tasks
