"""Turn use-case events into audit drafts for the writer. Never pass secrets in ``data``."""

from __future__ import annotations

from typing import Any

from warden.audit.writer import AuditWriter
from warden.core.clock import Clock
from warden.core.model import AuditDraft


class Auditor:
    def __init__(self, writer: AuditWriter, clock: Clock) -> None:
        self.writer = writer
        self._clock = clock

    def record(
        self,
        type: str,
        actor: str,
        data: dict[str, Any] | None = None,
        *,
        agent: str | None = None,
        task_id: str | None = None,
        decision_id: str | None = None,
        ts: float | None = None,
    ) -> None:
        self.writer.submit(
            AuditDraft(
                ts=self._clock.now() if ts is None else ts,
                type=type,
                actor=actor,
                data=data or {},
                agent=agent,
                task_id=task_id,
                decision_id=decision_id,
            )
        )
