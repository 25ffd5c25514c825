"""Tasks and the credentials issued for them: one aggregate (a credential belongs to its task)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from warden.core.model import AuditDraft, AuditRecord, Credential, Task, TaskStatus

__all__ = ["TaskStore"]


class TaskStore(Protocol):
    """Tasks, their delegation tree and their credentials.

    ``create_task`` and ``create_credential`` append the issuance records to the audit chain in the
    same transaction (ADR 0090), so an implementation of this port also implements ``AuditLog``."""

    def create_task(
        self, task: Task, credential: Credential, audit: Sequence[AuditDraft] = ()
    ) -> list[AuditRecord]:
        """Insert a task, its first credential and the audit records of their issuance in one
        transaction (appended to the chain there); returns those records."""
        ...

    def create_credential(
        self, credential: Credential, audit: Sequence[AuditDraft] = ()
    ) -> list[AuditRecord]: ...

    def fetch_task(self, task_id: str) -> Task: ...

    def list_tasks(
        self,
        *,
        agent: str | None = None,
        status: TaskStatus | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[Task]:
        """Newest first (created_at, id descending); ``after``: last id of the previous page."""
        ...

    def list_active_tasks(self) -> Iterator[Task]:
        """Every task with status active (streamed)."""
        ...

    def end_task(
        self, task_id: str, status: TaskStatus, *, ended_at: float, reason: str
    ) -> tuple[Task, list[Credential]]:
        """Set a task's final status and revoke all its unrevoked credentials, atomically.

        Only an active task can end: ConflictError otherwise. Returns the updated task and the
        credentials revoked by this call.
        """
        ...

    def end_task_tree(
        self, task_id: str, status: TaskStatus, *, ended_at: float, reason: str
    ) -> list[tuple[Task, list[Credential]]]:
        """End a task and every active task delegated from it (transitively), atomically.

        The task gets ``status``; its active descendants get ``revoked`` with the reason
        ``parent task <id> <status>``. Every unrevoked credential of each is revoked. Returns
        (task, credentials revoked by this call) pairs, the requested task first, then its
        descendants parent before child. NotFoundError / ConflictError as ``end_task``.
        """
        ...

    def list_child_tasks(self, parent_id: str) -> list[Task]:
        """Tasks delegated directly from ``parent_id`` (any status), oldest first."""
        ...

    def task_subtree(self, task_id: str) -> list[Task]:
        """The task and its delegated subtasks, recursively, oldest first (NotFoundError)."""
        ...

    def fetch_credential(self, jti: str) -> Credential: ...

    def revoke_credential(self, jti: str, *, revoked_at: float) -> Credential:
        """Mark one credential revoked (idempotent: an earlier revocation time is kept)."""
        ...

    def list_credentials(self, task_id: str) -> list[Credential]: ...

    def list_revoked_credentials(self, *, not_expired_at: float) -> list[Credential]:
        """Revoked credentials whose expiry is still in the future (for the revocation set)."""
        ...
