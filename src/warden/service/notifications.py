"""Who hears about what: approval and behaviour events as signed webhooks, each attempt audited.

Recipients are human ids (an agent's owner, approvers), ``group:<name>`` for approver groups
(expanded to their members too), and ``approvers`` for the approver role. A webhook endpoint
receives an event when its ``for`` list meets the recipients (or is ``*``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from warden.core.clock import Clock
from warden.service.auditing import Auditor
from warden.webhooks import Delivery, WebhookDispatcher


class Notifier:
    def __init__(
        self,
        dispatcher: WebhookDispatcher | None,
        auditor: Auditor,
        clock: Clock,
        groups: Mapping[str, frozenset[str]],
    ) -> None:
        self._dispatcher = dispatcher
        self._audit = auditor
        self._clock = clock
        self._groups = groups

    def recipients(self, levels: Iterable[str], owner: str) -> set[str]:
        """The recipients for escalation levels (``owner``, ``group:x``, ``approvers``)."""
        out: set[str] = set()
        for level in levels:
            if level == "owner":
                out.add(owner)
            elif level.startswith("group:"):
                out.add(level)
                out |= self._groups.get(level.removeprefix("group:"), frozenset())
            else:
                out.add(level)
        return out

    def send(
        self,
        event_type: str,
        data: Mapping[str, Any],
        recipients: Iterable[str],
        *,
        agent: str | None = None,
        task_id: str | None = None,
    ) -> None:
        """Queue the event for every interested endpoint (never blocks)."""
        if self._dispatcher is None:
            return
        wanted = set(recipients)
        ids = self._dispatcher.submit(event_type, data, wanted, ts=self._clock.now())
        if ids:
            self._audit.record(
                "webhook.queued",
                "warden",
                {"event": event_type, "msg_id": ids[0], "recipients": sorted(wanted)},
                agent=agent,
                task_id=task_id,
            )

    def delivered(self, d: Delivery, ok: bool, final: bool) -> None:
        """The dispatcher's report on one attempt (runs on a delivery thread)."""
        record_delivery(self._audit, d, ok, final)


def delivery_reporter(auditor: Auditor) -> Callable[[Delivery, bool, bool], None]:
    """The dispatcher's ``on_result``: audits each attempt. Needs only the auditor, so the
    dispatcher is built before the notifier that sends through it (no cycle to wire late)."""
    return lambda d, ok, final: record_delivery(auditor, d, ok, final)


def record_delivery(auditor: Auditor, d: Delivery, ok: bool, final: bool) -> None:
    """Audit one delivery attempt: delivered, failed (to be retried) or given up."""
    if ok:
        type_ = "webhook.delivered"
    elif final:
        type_ = "webhook.gave_up"
    else:
        type_ = "webhook.attempt_failed"
    auditor.record(
        type_,
        "warden",
        {
            "msg_id": d.msg_id,
            "event": d.event_type,
            "endpoint": d.endpoint.name,
            "attempt": d.attempt,
            "status": d.status,
            "error": d.error,
        },
    )
