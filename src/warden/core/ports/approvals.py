"""Human approval requests and the one-use grants they become."""

from __future__ import annotations

from typing import Protocol

from warden.core.model import ApprovalRequest, ApprovalStatus

__all__ = ["ApprovalStore"]


class ApprovalStore(Protocol):
    """Approval requests; status changes are compare-and-set, spending a grant is atomic."""

    def create_approval(self, request: ApprovalRequest) -> None:
        """ConflictError if the id exists."""
        ...

    def fetch_approval(self, request_id: str) -> ApprovalRequest: ...

    def update_approval(
        self, request: ApprovalRequest, *, expect_status: ApprovalStatus
    ) -> ApprovalRequest:
        """Replace the row if its stored status is still ``expect_status`` (compare and set).

        ApprovalClosedError when another process changed the status first.
        """
        ...

    def use_approval(self, request_id: str, *, used_at: float, decision_id: str) -> bool:
        """Spend an approved, unexpired, unused grant atomically; False if it cannot be spent."""
        ...

    def list_approvals(
        self,
        *,
        status: ApprovalStatus | None = None,
        agent: str | None = None,
        updated_since: float | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[ApprovalRequest]:
        """Newest first (created_at, id descending); ``after``: last id of the previous page.

        With ``updated_since``: oldest change first (updated_at ascending), for replica sync.
        """
        ...
