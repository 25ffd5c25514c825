"""The audit log: the hash chain, its signed checkpoints and the export cursors over it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from warden.core.governance import AuditQuery, Checkpoint
from warden.core.model import AuditDraft, AuditRecord

__all__ = ["AuditLog"]


class AuditLog(Protocol):
    """The append-only, hash-chained audit log (``warden.core.audit``), its checkpoints and
    export cursors, and attribution search over it."""

    def append_audit(self, drafts: Sequence[AuditDraft]) -> list[AuditRecord]:
        """Append drafts to the hash chain in one transaction.

        Reads the chain head under a lock that serialises appenders across processes
        (PostgreSQL advisory transaction lock; SQLite's write lock via BEGIN IMMEDIATE), then
        seals each draft with ``warden.core.audit.seal`` using consecutive seq numbers from
        head.seq + 1 (the first record is seq 1 with prev ``GENESIS_HASH``).
        """
        ...

    def list_audit(
        self,
        *,
        after_seq: int = 0,
        limit: int = 100,
        type_prefix: str | None = None,
        agent: str | None = None,
        task_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[AuditRecord]:
        """Ascending by seq, strictly after ``after_seq``."""
        ...

    def iter_audit(self, *, batch: int = 1000) -> Iterator[AuditRecord]:
        """Every record in seq order, fetched in batches (for verification and export)."""
        ...

    def audit_head(self) -> tuple[int, str]:
        """(seq, hash) of the newest record, or (0, GENESIS_HASH) when empty."""
        ...

    def search_audit(
        self, query: AuditQuery, *, after_seq: int = 0, limit: int = 100
    ) -> list[AuditRecord]:
        """Records matching every filter of ``query``, ascending by seq after ``after_seq``."""
        ...

    def create_checkpoint(self, checkpoint: Checkpoint) -> None:
        """ConflictError if a checkpoint at that seq exists."""
        ...

    def list_checkpoints(self, *, after_seq: int = 0, limit: int = 1000) -> list[Checkpoint]:
        """Ascending by seq."""
        ...

    def latest_checkpoint(self) -> Checkpoint | None: ...

    def iter_checkpoints(self, *, batch: int = 1000) -> Iterator[Checkpoint]:
        """Every checkpoint in seq order, fetched in batches."""
        ...

    def fetch_export_cursor(self, name: str) -> int:
        """The last exported seq for the named sink (0 when it never exported)."""
        ...

    def advance_export_cursor(self, name: str, *, expected: int, to: int, at: float) -> None:
        """Move the cursor from ``expected`` to ``to`` (ConflictError if it is elsewhere)."""
        ...
