"""Replication between replicas: the heartbeat table and the change feed (ADR 0092)."""

from __future__ import annotations

from typing import Protocol

from warden.core.model import Change, DenyChanges, Replica

__all__ = ["ChangeFeed"]


class ChangeFeed(Protocol):
    """Replicas' heartbeats, the change log (databases without LISTEN/NOTIFY) and the deny
    freshness poll."""

    def upsert_replica(self, replica: Replica) -> None: ...

    def list_replicas(self, *, seen_since: float) -> list[Replica]: ...

    def delete_replica(self, replica_id: str) -> None: ...

    def append_change(self, change: Change, *, ts: float) -> int:
        """Append to the change log (databases without LISTEN/NOTIFY); returns its seq."""
        ...

    def list_changes(self, *, after_seq: int, limit: int = 500) -> list[tuple[int, Change]]: ...

    def last_change_seq(self) -> int: ...

    def prune_changes(self, *, before: float) -> int: ...

    def deny_changes(self, *, since: float, now: float) -> DenyChanges:
        """Credentials revoked and agents made inactive after ``since`` (credentials still
        unexpired at ``now``): one cheap indexed read, the freshness poll (ADR 0092)."""
        ...
