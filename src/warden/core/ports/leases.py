"""Downstream credential leases (database users, cloud roles) and their state machine."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from warden.core.model import Lease, LeaseState

__all__ = ["LeaseStore"]


class LeaseStore(Protocol):
    """Leases, recorded before anything is created downstream."""

    def create_lease(self, lease: Lease) -> None:
        """Record a lease (before anything is created downstream). ConflictError on a dup id."""
        ...

    def fetch_lease(self, lease_id: str) -> Lease: ...

    def update_lease(self, lease: Lease) -> None:
        """Replace the lease row by id (NotFoundError if absent)."""
        ...

    def list_leases(
        self,
        *,
        task_id: str | None = None,
        states: Sequence[LeaseState] | None = None,
        target: str | None = None,
    ) -> list[Lease]:
        """Leases matching every given filter, oldest first."""
        ...

    def list_leases_of_ended_tasks(self) -> list[Lease]:
        """Leases in creating/active/revoking whose task is no longer active (for the reaper)."""
        ...
