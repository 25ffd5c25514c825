"""kill -9 under load: nothing acknowledged is lost, no task exists without its issuance record,
and the chain verifies (SQLite and a private PostgreSQL; issue 11 item 1)."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.faults._durable import (
    Load,
    audit_facts,
    exchange,
    poll,
    private_postgres,
    running,
    spawn,
    sqlite_url,
    verify,
)

pytestmark = pytest.mark.faults


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_kill9_under_load_loses_no_acknowledged_record(tmp_path: Path, backend: str) -> None:
    with ExitStack() as stack:
        url = stack.enter_context(private_postgres(tmp_path)) if backend == "postgres" else None
        data = tmp_path / "data"
        w = spawn(tmp_path, data, database_url=url)
        try:
            with w.client() as http:
                first = exchange(http, w)
                assert first.status_code == 200, first.text
            load = Load(w, first.json()["access_token"], deciders=4, exchangers=2)
            with load:
                # kill while requests are in flight, after plenty were acknowledged
                poll(lambda: load.counts()[0] >= 150 and load.counts()[1] >= 10, "traffic")
                w.kill9()
        finally:
            w.proc.stop()
        acked = load.acked
        acked.tasks.add(first.json()["task_id"])
        with running(tmp_path, data, database_url=url, name="restarted"):
            pass  # the restarted server comes up ready on what the killed one left

        facts = audit_facts(url or sqlite_url(data))
        assert not acked.decisions - facts.decisions, "acknowledged decisions missing from the log"
        assert not acked.tasks - facts.issued_tasks, "acknowledged tasks without issuance records"
        assert not facts.tasks - facts.issued_tasks, "a task exists with no issuance record"
        assert not facts.jtis - facts.issued_jtis, "a credential exists with no issuance record"
        checked = verify(data, url)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert checked.stdout.startswith("ok:"), checked.stdout
