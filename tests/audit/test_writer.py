"""The audit writer: batched off the hot path, in order, never dropping a record."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from warden.audit.writer import AuditWriter
from warden.core.audit import verify_chain
from warden.core.model import AuditDraft, AuditRecord
from warden.errors import StorageError
from warden.storage.sql import SQLStore, open_store, sqlite_url_for


def _store(tmp_path: Path) -> SQLStore:
    store = open_store(sqlite_url_for(tmp_path))
    store.migrate()
    return store


def _draft(i: int, data: object | None = None) -> AuditDraft:
    return AuditDraft(
        ts=1_800_000_000.0 + i,
        type="test.event",
        actor="test",
        data={"i": i} if data is None else data,
    )  # type: ignore[arg-type]


class FlakyStore(SQLStore):
    """A real store whose first appends fail, as when the database is briefly away."""

    def __init__(self, url: str, failures: int) -> None:
        super().__init__(url)
        self.failures_left = failures

    def append_audit(self, drafts: Sequence[AuditDraft]) -> list[AuditRecord]:
        if self.failures_left > 0:
            self.failures_left -= 1
            raise StorageError("database is away")
        return super().append_audit(drafts)


def test_many_producers_one_gap_free_chain(tmp_path: Path) -> None:
    store = _store(tmp_path)
    writer = AuditWriter(store, batch_size=50)
    writer.start()

    def produce(base: int) -> None:
        for i in range(200):
            writer.submit(_draft(base + i))

    threads = [threading.Thread(target=produce, args=(n * 1000,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert writer.flush(30)
    writer.close()
    result = verify_chain(store.iter_audit())
    assert result.ok and result.records == 800


def test_a_store_outage_is_retried_not_dropped(tmp_path: Path) -> None:
    store = FlakyStore(sqlite_url_for(tmp_path), failures=2)
    store.migrate()
    writer = AuditWriter(store, batch_size=10)
    writer.start()
    for i in range(25):
        writer.submit(_draft(i))
    assert writer.flush(30)
    writer.close()
    assert writer.failures == 2
    assert [r.data["i"] for r in store.iter_audit()] == list(range(25))


def test_an_unstorable_record_is_kept_with_a_marker_and_does_not_stall_the_rest(
    tmp_path: Path,
) -> None:
    store = _store(tmp_path)
    writer = AuditWriter(store, batch_size=10)
    writer.start()
    writer.submit(_draft(0))
    writer.submit(_draft(1, {"bad": object()}))
    writer.submit(_draft(2))
    assert writer.flush(10)
    writer.close()
    records = list(store.iter_audit())
    assert [r.seq for r in records] == [1, 2, 3]
    assert records[1].type == "test.event"
    assert "unstorable_data" in records[1].data
    assert records[2].data == {"i": 2}
    assert verify_chain(records).ok
