"""Shared Signals (SSF 1.0) values: streams, outbox entries, and the store port they need."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from warden.core.model import AuditRecord

PUSH = "urn:ietf:rfc:8935"
POLL = "urn:ietf:rfc:8936"


class StreamStatus(StrEnum):
    ENABLED = "enabled"  # events are queued and delivered
    PAUSED = "paused"  # events are queued, delivered when enabled again
    DISABLED = "disabled"  # events are not queued


@dataclass(frozen=True)
class Stream:
    id: str
    audience: str
    description: str
    delivery_method: str  # PUSH or POLL
    endpoint_url: str | None  # push: the receiver's URL
    authorization_header: str | None  # push: sent as Authorization (a receiver's secret)
    poll_token_hash: str | None  # poll: sha256 hex of the bearer the receiver polls with
    events_requested: tuple[str, ...]
    status: StreamStatus
    status_reason: str
    created_by: str
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class OutboxEntry:
    """One SET waiting for (or done with) delivery on one stream."""

    id: int
    stream_id: str
    jti: str
    event_type: str
    audit_seq: int | None
    token: str
    created_at: float
    attempts: int
    next_attempt_at: float
    delivered_at: float | None = None
    outcome: str | None = None
    last_error: str | None = None


@dataclass(frozen=True)
class NewEvent:
    stream_id: str
    jti: str
    event_type: str
    audit_seq: int | None
    token: str


class SignalStore(Protocol):
    def create_stream(self, stream: Stream) -> None: ...

    def fetch_stream(self, stream_id: str) -> Stream: ...

    def list_streams(self) -> list[Stream]: ...

    def update_stream(self, stream: Stream) -> None: ...

    def delete_stream(self, stream_id: str) -> None: ...

    def fetch_export_cursor(self, name: str) -> int: ...

    def signal_records(
        self, *, after_seq: int, types: Sequence[str], limit: int
    ) -> tuple[list[AuditRecord], int]:
        """Records of ``types`` after ``after_seq`` and the seq scanned up to."""
        ...

    def enqueue_signals(
        self, events: Sequence[NewEvent], *, cursor: str, expected: int, to: int, at: float
    ) -> None:
        """Add events and move the cursor in one transaction (ConflictError: it moved)."""
        ...

    def add_signal(self, event: NewEvent, *, at: float) -> None: ...

    def claim_stream(self, stream_id: str, owner: str, *, until: float, now: float) -> bool: ...

    def pending_signals(self, stream_id: str, *, limit: int) -> list[OutboxEntry]: ...

    def signal_attempted(
        self,
        entry_id: int,
        *,
        ok: bool,
        outcome: str | None,
        error: str | None,
        at: float,
        retry_at: float,
    ) -> None: ...

    def acknowledge_signals(
        self, stream_id: str, jtis: Sequence[str], *, outcome: str, error: str | None, at: float
    ) -> int: ...

    def prune_signals(self, *, before: float) -> int: ...

    def count_pending_signals(self) -> dict[str, int]:
        """Undelivered events by delivery method."""
        ...
