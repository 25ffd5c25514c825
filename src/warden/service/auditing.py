"""Turn use-case events into audit drafts for the writer. Never pass secrets in ``data``.

With tracing on, every record made inside a span carries ``trace: {trace_id, span_id}`` (the
audit record links to the trace), and a decision record labels the current span with the
decision's facts (so the decision id and the trace id point at each other).
"""

from __future__ import annotations

from typing import Any

from warden.audit.writer import AuditWriter
from warden.core.clock import Clock
from warden.core.model import AuditDraft
from warden.telemetry import NO_TRACING, Tracing

DECISION = "authz.decision"
APPROVAL_REQUESTED = "approval.requested"


class Auditor:
    def __init__(self, writer: AuditWriter, clock: Clock) -> None:
        self.writer = writer
        self._clock = clock
        self.tracing: Tracing = NO_TRACING

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
        data = data or {}
        if self.tracing.enabled:
            data = self._traced(type, data, agent, task_id, decision_id)
        self.writer.submit(
            AuditDraft(
                ts=self._clock.now() if ts is None else ts,
                type=type,
                actor=actor,
                data=data,
                agent=agent,
                task_id=task_id,
                decision_id=decision_id,
            )
        )

    def _traced(
        self,
        type: str,
        data: dict[str, Any],
        agent: str | None,
        task_id: str | None,
        decision_id: str | None,
    ) -> dict[str, Any]:
        span = self.tracing.current()
        if span is None:
            return data
        if type == DECISION:
            reasons = data.get("reasons")
            span.set_attributes(
                {
                    k: v
                    for k, v in {
                        "warden.decision_id": decision_id,
                        "warden.decision": data.get("decision"),
                        "warden.agent": agent,
                        "warden.task": task_id,
                        "warden.tool": data.get("action"),
                        "warden.policies": [str(r) for r in reasons] if reasons else None,
                        "warden.reason": data.get("reason"),
                    }.items()
                    if v is not None
                }
            )
        elif type == APPROVAL_REQUESTED:  # the step-up this decision opened
            span.set_attribute("warden.approval_id", str(data.get("request_id", "")))
        ids = self.tracing.ids(span)
        return {**data, "trace": ids} if ids else data
