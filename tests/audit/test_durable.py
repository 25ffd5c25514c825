"""Durable before acknowledged (ADR 0090): tickets, waiting on the group commit, the bound, the
unavailable state and its recovery, shutdown accounting, and the head file (ADR 0091)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from warden.audit.head import HEAD_FILE, ChainHead, HeadFile, read_head
from warden.audit.writer import AuditWriter
from warden.core.model import AuditDraft, AuditRecord
from warden.errors import AuditUnavailableError, StorageError
from warden.service.checkpoints import verify_log
from warden.storage.sql import SQLStore, sqlite_url_for


def _draft(i: int) -> AuditDraft:
    return AuditDraft(ts=1_800_000_000.0 + i, type="test.event", actor="test", data={"i": i})


class SwitchedStore(SQLStore):
    """A real SQLite store whose appends fail while ``broken`` is set (a full or read-only disk
    as the writer sees it), and which counts committed batches."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.broken = threading.Event()
        self.batches = 0

    def append_audit(self, drafts: Sequence[AuditDraft]) -> list[AuditRecord]:
        if self.broken.is_set():
            raise StorageError("disk I/O error")
        records = super().append_audit(drafts)
        self.batches += 1
        return records


@pytest.fixture
def store(tmp_path: Path) -> SwitchedStore:
    s = SwitchedStore(sqlite_url_for(tmp_path))
    s.migrate()
    return s


def _poll(condition: object, what: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_waiter_returns_only_once_its_record_is_in_the_store(
    store: SwitchedStore, tmp_path: Path
) -> None:
    writer = AuditWriter(store, head=HeadFile(tmp_path / HEAD_FILE))
    writer.start()
    seen: list[bool] = []

    def produce(base: int) -> None:
        for i in range(25):
            ticket = writer.submit(_draft(base + i))
            writer.wait(ticket)
            found = store.list_audit(after_seq=0, limit=1000)
            seen.append(any(r.data == {"i": base + i} for r in found))

    threads = [threading.Thread(target=produce, args=(n * 100,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.close()
    assert seen == [True] * 200
    assert store.batches < 200  # group commit: waiters shared commits
    head = read_head(tmp_path / HEAD_FILE)
    assert head is not None and (head.seq, head.hash) == store.audit_head()


def test_past_the_bound_waiters_and_new_records_are_refused_then_it_recovers(
    store: SwitchedStore, caplog: pytest.LogCaptureFixture
) -> None:
    writer = AuditWriter(store, max_wait=0.3)
    writer.start()
    writer.wait(writer.submit(_draft(0)))
    store.broken.set()
    waiting = writer.submit(_draft(1))
    with pytest.raises(AuditUnavailableError):
        writer.wait(waiting)
    assert not writer.available
    assert "audit unavailable" in caplog.text
    with pytest.raises(AuditUnavailableError):
        writer.submit(_draft(2))  # refused at once, not queued: the backlog stays bounded
    assert writer.backlog == 1
    store.broken.clear()
    _poll(lambda: writer.available, "recovery")
    writer.wait(writer.submit(_draft(3)))
    writer.close()
    assert [r.data["i"] for r in store.iter_audit()] == [0, 1, 3]
    assert writer.failures > 0


def test_an_event_loop_waits_without_blocking(store: SwitchedStore) -> None:
    writer = AuditWriter(store, linger=0.02)
    writer.start()

    async def main() -> list[str]:
        order: list[str] = []

        async def other() -> None:
            order.append("loop ran meanwhile")

        ticket = writer.submit(_draft(0))
        task = asyncio.create_task(other())
        await writer.wait_async([ticket])
        await task
        order.append("durable" if list(store.iter_audit()) else "not durable")
        return order

    assert asyncio.run(main()) == ["loop ran meanwhile", "durable"]
    writer.close()


def test_an_event_loop_waiter_is_refused_past_the_bound(store: SwitchedStore) -> None:
    writer = AuditWriter(store, max_wait=0.2)
    writer.start()
    store.broken.set()
    ticket = writer.submit(_draft(0))
    with pytest.raises(AuditUnavailableError):
        asyncio.run(writer.wait_async([ticket]))
    store.broken.clear()
    writer.close()


def test_async_mode_acknowledges_before_the_commit(store: SwitchedStore) -> None:
    writer = AuditWriter(store, durability="async", max_wait=0.3)
    writer.start()
    store.broken.set()
    writer.wait(writer.submit(_draft(0)))  # returns at once: this is the loss window
    assert writer.backlog == 1
    store.broken.clear()
    assert writer.flush(10)
    writer.close()


def test_close_with_a_failing_store_counts_and_logs_what_was_not_written(
    store: SwitchedStore, caplog: pytest.LogCaptureFixture
) -> None:
    writer = AuditWriter(store, max_wait=0.3)
    writer.start()
    writer.wait(writer.submit(_draft(0)))
    store.broken.set()
    for i in range(1, 8):
        writer.submit(_draft(i))
    assert writer.close() == 7
    assert writer.unwritten == 7
    assert "audit: 7 record(s) could not be written before shutdown" in caplog.text


def test_a_head_that_cannot_be_written_holds_the_acknowledgement(
    store: SwitchedStore, tmp_path: Path
) -> None:
    path = tmp_path / HEAD_FILE
    writer = AuditWriter(store, max_wait=0.3, head=HeadFile(path))
    writer.start()
    writer.wait(writer.submit(_draft(0)))
    path.unlink()
    path.mkdir()  # the rename onto it fails, as on a read-only disk (and for root too)
    (path / "in-the-way").write_text("x")
    with pytest.raises(AuditUnavailableError):
        writer.wait(writer.submit(_draft(1)))
    assert not writer.available
    (path / "in-the-way").unlink()
    path.rmdir()
    _poll(lambda: writer.available, "recovery once the head can be written")
    writer.close()
    head = read_head(path)
    assert head is not None and head.seq == 2


def test_a_head_the_database_does_not_hold_is_kept_and_not_overwritten(
    store: SwitchedStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / HEAD_FILE
    head = HeadFile(path)
    head.advance(40, "f" * 64)
    reopened = HeadFile(path)
    reopened.reconcile({}, 12)  # the database ends at seq 12
    assert reopened.frozen
    assert "records 13..40 are missing" in caplog.text
    reopened.advance(50, "e" * 64)
    assert read_head(path) == ChainHead(40, "f" * 64)


def test_verify_reports_the_missing_range_against_the_head(store: SwitchedStore) -> None:
    writer = AuditWriter(store)
    for i in range(10):
        writer.submit(_draft(i))
    seq, hash = store.audit_head()
    records = list(store.iter_audit())
    ok = verify_log(records, [], {"keys": []}, ChainHead(seq, hash))
    assert ok.ok and ok.head_seq == 10
    cut = verify_log(records[:6], [], {"keys": []}, ChainHead(seq, hash))
    assert not cut.ok and cut.kind == "truncated" and cut.missing == (7, 10)
    wrong = verify_log(records, [], {"keys": []}, ChainHead(seq, "0" * 64))
    assert not wrong.ok and wrong.kind == "head" and wrong.first_bad_seq == 10


def test_durability_is_configured_in_yaml_and_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from warden.config import load_settings
    from warden.errors import InvalidParameterError

    assert load_settings().audit_durability == "durable"  # the server default
    config = tmp_path / "warden.yaml"
    config.write_text("audit:\n  durability: async\n  max_wait: 2s\n")
    settings = load_settings(config)
    assert (settings.audit_durability, settings.audit_max_wait) == ("async", 2.0)
    monkeypatch.setenv("WARDEN_AUDIT_DURABILITY", "durable")
    assert load_settings(config).audit_durability == "durable"
    config.write_text("audit:\n  durability: sometimes\n")
    with pytest.raises(InvalidParameterError, match="durable or async"):
        load_settings(config)
