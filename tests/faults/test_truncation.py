"""A cut tail is detectable: the chain head kept outside the database (issue 11 item 3)."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.faults._durable import decide, exchange, spawn, verify

pytestmark = pytest.mark.faults


def test_deleting_the_last_records_is_reported_as_truncated(tmp_path: Path) -> None:
    data = tmp_path / "data"
    w = spawn(tmp_path, data)
    try:
        with w.client() as http:
            token = exchange(http, w).json()["access_token"]
            for _ in range(10):
                assert decide(http, w, token).status_code == 200
        w.kill9()  # no final checkpoint: only the head file knows where the log ended
    finally:
        w.proc.stop()
    assert verify(data, None).returncode == 0

    db = sqlite3.connect(data / "warden.db")
    (total,) = db.execute("SELECT max(seq) FROM audit_events").fetchone()
    db.execute("DELETE FROM audit_events WHERE seq > ?", (total - 4,))
    db.commit()
    db.close()

    checked = verify(data, None)
    assert checked.returncode == 1
    assert checked.stdout.startswith(f"truncated: records {total - 3}..{total} are missing")

    # the head copied elsewhere serves as well, when the data folder's is gone too
    copy = tmp_path / "head-copy.json"
    shutil.copy(data / "audit-head.json", copy)
    (data / "audit-head.json").unlink()
    checked = verify(data, None, "--head", str(copy), "--json")
    assert checked.returncode == 1
    assert '"kind": "truncated"' in checked.stdout
    assert f'"missing": [\n    {total - 3},\n    {total}\n  ]' in checked.stdout
