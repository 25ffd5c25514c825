"""``ApprovalStore`` in memory: compare-and-set status changes, a grant spent once."""

from __future__ import annotations

import dataclasses

from warden.core.model import ApprovalRequest, ApprovalStatus
from warden.errors import ApprovalClosedError, ConflictError, NotFoundError
from warden.storage.memory._base import MemoryBase, before_cursor, stored
from warden.storage.memory._base import limit as _limit


class ApprovalMemory(MemoryBase):
    def __init__(self) -> None:
        super().__init__()
        self._approvals: dict[str, ApprovalRequest] = {}

    def create_approval(self, request: ApprovalRequest) -> None:
        with self._lock:
            if request.id in self._approvals:
                raise ConflictError(f"approval `{request.id}` already exists")
            self._approvals[request.id] = stored(request)

    def fetch_approval(self, request_id: str) -> ApprovalRequest:
        with self._lock:
            found = self._approvals.get(request_id)
            if found is None:
                raise NotFoundError(f"approval request `{request_id}` not found")
            return stored(found)

    def update_approval(
        self, request: ApprovalRequest, *, expect_status: ApprovalStatus
    ) -> ApprovalRequest:
        with self._lock:
            current = self._approvals.get(request.id)
            if current is None:
                raise NotFoundError(f"approval request `{request.id}` not found")
            expected = ApprovalStatus(expect_status)
            if current.status != expected:
                raise ApprovalClosedError(
                    f"approval request `{request.id}` is {current.status}, not {expected.value}",
                    detail={"status": str(current.status)},
                )
            self._approvals[request.id] = stored(request)
        return request

    def use_approval(self, request_id: str, *, used_at: float, decision_id: str) -> bool:
        with self._lock:
            a = self._approvals.get(request_id)
            if (
                a is None
                or a.status != ApprovalStatus.APPROVED
                or a.used_at is not None
                or a.grant_expires_at is None
                or not a.grant_expires_at > float(used_at)
            ):
                return False
            self._approvals[request_id] = dataclasses.replace(
                a, used_at=float(used_at), used_by_decision=decision_id, updated_at=used_at
            )
            return True

    def list_approvals(
        self,
        *,
        status: ApprovalStatus | None = None,
        agent: str | None = None,
        updated_since: float | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[ApprovalRequest]:
        with self._lock:
            rows = list(self._approvals.values())
            if updated_since is not None:
                rows = [a for a in rows if a.updated_at >= float(updated_since)]
                rows.sort(key=lambda a: (a.updated_at, a.id))
            else:
                rows.sort(key=lambda a: (a.created_at, a.id), reverse=True)
            if status is not None:
                rows = [a for a in rows if a.status == ApprovalStatus(status)]
            if agent is not None:
                rows = [a for a in rows if a.agent == agent]
            if after is not None:
                cursor = before_cursor(self._approvals, after)
                rows = [a for a in rows if (float(a.created_at), a.id) < cursor]
            return [stored(a) for a in rows[: _limit(limit)]]
