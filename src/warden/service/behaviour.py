"""Behavioural governance off the hot path: findings, escalations, baselines.

The ``BehaviourMonitor`` (in memory, on the decision path) queues each finding with what the
thresholds ask for. ``drain`` — run by a background loop — stores the findings, writes one
``behaviour.finding`` audit record each, tells the owner (signed webhook) when asked to, and
carries out step-up notices and suspensions (``AgentService.suspend``, the kill switch).
``persist`` writes learned baselines that changed. Declared baselines are set here and
announced to the other replicas (``baseline.declared``): a budget declared through one replica
binds on all of them (ADR 0094).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from warden.behaviour import BehaviourMonitor, Escalation, parse_declared
from warden.core.clock import Clock
from warden.core.model import Agent, Baseline, Finding
from warden.core.ports import BehaviourStore
from warden.errors import ConflictError, InvalidParameterError, NotFoundError, WardenError
from warden.service.auditing import Auditor
from warden.service.notifications import Notifier
from warden.service.tasks import Cascade

log = logging.getLogger("warden.behaviour")

ACTOR = "warden:behaviour"


def finding_view(f: Finding) -> dict[str, Any]:
    return {
        "id": f.id,
        "agent": f.agent,
        "detector": f.detector,
        "severity": f.severity.value,
        "summary": f.summary,
        "created_at": f.created_at,
        "facts": f.facts,
        "task_id": f.task_id,
        "decision_id": f.decision_id,
        "score": f.score,
        "actions": list(f.actions),
    }


class BehaviourService:
    def __init__(
        self,
        store: BehaviourStore,
        monitor: BehaviourMonitor,
        auditor: Auditor,
        clock: Clock,
        notifier: Notifier,
        suspend: Callable[[str, str, str], tuple[Agent, Cascade]],
        *,
        announce: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        self._store = store
        self.monitor = monitor
        self._audit = auditor
        self._clock = clock
        self._notify = notifier
        self._suspend = suspend  # (agent name, actor, reason)
        self._declared: dict[str, dict[str, Any]] = {}
        # tells the other replicas (the root passes replication's announcer; None: a lone process)
        self.announce: Callable[[str, dict[str, Any]], None] = announce or (lambda kind, data: None)

    def load(self) -> None:
        baselines = self._store.list_baselines()
        self._declared = {b.agent: dict(b.declared) for b in baselines}
        self.monitor.load(baselines)

    # -- declared baselines -------------------------------------------------------------------
    def set_declared(self, agent: Agent, body: Any, actor: str) -> dict[str, Any]:
        declared = parse_declared(body)  # raises InvalidParameterError on bad input
        document = dict(body or {})
        baseline = self.monitor.snapshot(agent.name, document)
        self._store.put_baseline(
            Baseline(agent.name, document, baseline.learned, self._clock.now())
        )
        self._declared[agent.name] = document
        self.monitor.set_declared(agent.name, declared)
        self.announce("baseline.declared", {"agent": agent.name, "declared": document})
        self._audit.record(
            "behaviour.baseline_declared", actor, {"baseline": document}, agent=agent.name
        )
        return self.view(agent)

    def declared_changed(self, data: dict[str, Any]) -> None:
        """Another replica declared a baseline (already stored): apply it here too."""
        name = str(data.get("agent") or "")
        document = data.get("declared")
        try:
            declared = parse_declared(document or None)
        except InvalidParameterError:
            log.warning("ignoring an invalid declared baseline announced for %s", name)
            return
        self._declared[name] = dict(document or {})
        self.monitor.set_declared(name, declared)

    def view(self, agent: Agent) -> dict[str, Any]:
        return {
            "agent": agent.name,
            "declared": self._declared.get(agent.name, {}),
            **self.monitor.view(agent.name, self._clock.now()),
        }

    def list_findings(self, **filters: Any) -> list[Finding]:
        return self._store.list_findings(**filters)

    def reactivated(self, agent: str) -> None:
        self.monitor.reset(agent)

    # -- background -----------------------------------------------------------------------------
    def drain(self) -> int:
        """Handle every queued finding; returns how many."""
        outbox = self.monitor.outbox
        batch: list[Escalation] = []
        while outbox:
            batch.append(outbox.popleft())
        if not batch:
            return 0
        try:
            self._store.create_findings([e.finding for e in batch])
        except WardenError:
            log.exception("could not store %d findings (they are in the audit log)", len(batch))
        for esc in batch:
            self._handle(esc)
        return len(batch)

    def _handle(self, esc: Escalation) -> None:
        f = esc.finding
        view = finding_view(f)
        self._audit.record(
            "behaviour.finding",
            ACTOR,
            view,
            agent=f.agent,
            task_id=f.task_id,
            decision_id=f.decision_id,
        )
        owner = {esc.owner}
        if esc.notify:
            self._notify.send("behaviour.finding", view, owner, agent=f.agent, task_id=f.task_id)
        if esc.step_up:
            data = {
                "agent": f.agent,
                "score": f.score,
                "until": f.created_at + self.monitor.settings.step_up_for,
                "finding": view,
            }
            self._audit.record("behaviour.step_up", ACTOR, data, agent=f.agent)
            self._notify.send("behaviour.step_up", data, owner, agent=f.agent)
        if esc.suspend:
            reason = f"behaviour score {f.score}: {f.summary}"
            try:
                _, cascade = self._suspend(f.agent, ACTOR, reason)
            except (ConflictError, NotFoundError) as exc:
                log.info("behavioural suspension of %s skipped: %s", f.agent, exc)
                return
            self._notify.send(
                "agent.suspended",
                {
                    "agent": f.agent,
                    "reason": reason,
                    "tasks_ended": cascade.tasks,
                    "leases_pending": cascade.leases_pending,
                    "finding": view,
                },
                owner,
                agent=f.agent,
            )

    def persist(self) -> int:
        """Write learned baselines that changed (asynchronously from the decision path)."""
        changed = self.monitor.dirty()
        now = self._clock.now()
        for name, learned in changed:
            try:
                self._store.put_baseline(Baseline(name, self._declared.get(name, {}), learned, now))
            except WardenError:
                log.exception("could not store the learned baseline of %s", name)
        return len(changed)
