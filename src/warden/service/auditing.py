"""Turn use-case events into audit drafts for the writer. Never pass secrets in ``data``.

``record`` returns once the record is durable (``audit.durability: durable``, ADR 0090): what a
caller answers after it is in the log. On an event loop, ``deferred()`` collects the tickets
instead so the route can ``await writer.wait_async(tickets)`` without blocking the loop.
``note`` is for records about refused requests: queued, never waited on, never raising.

With tracing on, every record made inside a span carries ``trace: {trace_id, span_id}`` (the
audit record links to the trace), and a decision record labels the current span with the
decision's facts (so the decision id and the trace id point at each other).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from warden.audit.writer import AuditWriter, Ticket
from warden.core.clock import Clock
from warden.core.model import AuditDraft
from warden.errors import AuditUnavailableError
from warden.telemetry import NO_TRACING, Tracing

log = logging.getLogger("warden.audit")

# the tickets of records made while a route runs a use case on its event loop (see deferred())
_DEFERRED: ContextVar[list[Ticket] | None] = ContextVar("warden_audit_deferred", default=None)

DECISION = "authz.decision"
APPROVAL_REQUESTED = "approval.requested"


class Auditor:
    def __init__(self, writer: AuditWriter, clock: Clock, *, tracing: Tracing = NO_TRACING) -> None:
        self.writer = writer
        self._clock = clock
        self.tracing = tracing

    def draft(
        self,
        type: str,
        actor: str,
        data: dict[str, Any] | None = None,
        *,
        agent: str | None = None,
        task_id: str | None = None,
        decision_id: str | None = None,
        ts: float | None = None,
    ) -> AuditDraft:
        """The draft ``record`` would write (for a store transaction that appends it itself)."""
        data = data or {}
        if self.tracing.enabled:
            data = self._traced(type, data, agent, task_id, decision_id)
        return AuditDraft(
            ts=self._clock.now() if ts is None else ts,
            type=type,
            actor=actor,
            data=data,
            agent=agent,
            task_id=task_id,
            decision_id=decision_id,
        )

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
        """Write a record; returns once it is durable (AuditUnavailableError if it cannot be)."""
        ticket = self.writer.submit(
            self.draft(
                type, actor, data, agent=agent, task_id=task_id, decision_id=decision_id, ts=ts
            )
        )
        collected = _DEFERRED.get()
        if collected is not None:
            collected.append(ticket)
        else:
            self.writer.wait(ticket)

    def note(self, type: str, actor: str, data: dict[str, Any] | None = None) -> None:
        """Queue a record about a refused request: nothing is acknowledged by it, so it is not
        waited on, and a failing audit log must not turn the refusal into another error."""
        try:
            self.writer.submit(self.draft(type, actor, data))
        except AuditUnavailableError:
            log.warning("audit unavailable: %s record by %s not written", type, actor)

    @contextmanager
    def deferred(self) -> Iterator[list[Ticket]]:
        """Collect (do not wait on) the tickets of records made in this block, on this task."""
        tickets: list[Ticket] = []
        token = _DEFERRED.set(tickets)
        try:
            yield tickets
        finally:
            _DEFERRED.reset(token)

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
