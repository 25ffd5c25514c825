"""The outage journal (ADR 0093) on a real SQLite store: the file's durability rules, local
effect at once, replay that writes rows and audit records, idempotence, and replay at start."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lifecycle.test_replication import Pair
from tests.lifecycle.waiting import eventually
from warden.bootstrap import Warden
from warden.core.model import AgentStatus, TaskStatus
from warden.errors import StorageError
from warden.service.outage_journal import JOURNAL_NAME, OutageJournal

DOWN = StorageError("storage error: connection refused")

pytestmark = pytest.mark.faults


def test_the_journal_keeps_entries_across_appends_removals_and_a_torn_line(tmp_path: Path) -> None:
    journal = OutageJournal(tmp_path / JOURNAL_NAME)
    for n in range(3):
        journal.append({"id": f"e{n}", "kind": "task.end"})
    with (tmp_path / JOURNAL_NAME).open("ab") as fh:
        fh.write(b'{"id": "torn", "kin')  # a crash mid-append, before any answer
    assert [e["id"] for e in journal.entries()] == ["e0", "e1", "e2"]
    journal.remove({"e0", "e2"})
    journal.append({"id": "e3", "kind": "agent.suspend"})
    assert [e["id"] for e in journal.entries()] == ["e1", "e3"]
    journal.remove({"e1", "e3"})
    assert journal.entries() == [] and not (tmp_path / JOURNAL_NAME).exists()


def test_concurrent_appends_are_never_lost(tmp_path: Path) -> None:
    journal = OutageJournal(tmp_path / JOURNAL_NAME)
    threads = [
        threading.Thread(target=lambda n=n: journal.append({"id": f"t{n}"})) for n in range(20)
    ]
    for t in threads:
        t.start()
    journal.remove({"nothing"})
    for t in threads:
        t.join()
    assert sorted(e["id"] for e in journal.entries()) == sorted(f"t{n}" for n in range(20))


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    p = Pair(tmp_path, None, resync_interval=3600)
    yield p
    p.close()


def test_an_outage_end_holds_at_once_and_is_written_at_replay(pair: Pair) -> None:
    task, other = pair.start_task(), pair.start_task()
    assert pair.allowed(pair.a, task["access_token"]) is True
    view = pair.a.outage.end_task(
        task["task_id"], TaskStatus.COMPLETED, actor="operator:admin", reason="r", error=DOWN
    )
    assert view["state"] == "applied_locally_pending_write"
    assert pair.allowed(pair.a, task["access_token"]) is False  # at once, no database write
    assert pair.a.store.fetch_task(task["task_id"]).status is TaskStatus.ACTIVE
    revoked = pair.a.outage.revoke_token(other["access_token"], actor="pep:api-key", error=DOWN)
    assert pair.allowed(pair.a, other["access_token"]) is False
    assert pair.a.outage.pending == 2

    assert pair.a.outage.replay() == 2
    assert pair.a.outage.pending == 0
    assert pair.a.store.fetch_task(task["task_id"]).status is TaskStatus.COMPLETED
    assert pair.a.store.fetch_credential(revoked["jti"]).revoked_at is not None
    # announced: B applies both from the change feed
    eventually(lambda: pair.allowed(pair.b, other["access_token"]) is False, "B denies the jti")
    assert pair.allowed(pair.b, task["access_token"]) is False
    pair.a.writer.flush()
    types = {r.type for r in pair.a.store.list_audit(task_id=task["task_id"])}
    assert {"task.completed", "credential.revoked"} <= types
    # replaying the same change again is a no-op
    pair.a.outage.end_task(
        task["task_id"], TaskStatus.COMPLETED, actor="operator:admin", reason="r", error=DOWN
    )
    assert pair.a.outage.replay() == 1 and pair.a.outage.pending == 0


def test_a_suspension_journaled_before_a_restart_holds_and_is_replayed(tmp_path: Path) -> None:
    pair = Pair(tmp_path, None, resync_interval=3600)
    try:
        task = pair.start_task()
        pair.a.outage.suspend_agent("bot", actor="operator:admin", reason="kill", error=DOWN)
        assert pair.a.state.agents_by_name["bot"].status is AgentStatus.SUSPENDED
        assert pair.allowed(pair.a, task["access_token"]) is False
        journal = tmp_path / "data" / JOURNAL_NAME
        assert json.loads(journal.read_text().splitlines()[0])["kind"] == "agent.suspend"
        settings = pair.a.settings
    finally:
        pair.close()  # the replica stops before the database came back

    again = Warden(settings)  # restored from the journal before anything is served
    try:
        assert again.state.agents_by_name["bot"].status is AgentStatus.SUSPENDED
        assert again.store.fetch_agent("bot").status is AgentStatus.ACTIVE  # not written yet
        again.start()  # ... and replayed by the loop
        eventually(lambda: again.outage.pending == 0, "replayed at start", timeout=10)
        assert again.store.fetch_agent("bot").status is AgentStatus.SUSPENDED
        assert again.store.fetch_task(task["task_id"]).status is TaskStatus.REVOKED
    finally:
        again.close()
