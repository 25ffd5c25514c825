"""Attribution: who did what, for whom, under which policy — and one task's whole story.

``search`` filters the audit log by agent, owner, task (optionally with its delegation subtree),
on-behalf-of human, tool, decision, policy id and time range. ``story`` reconstructs a task and
its subtasks: attestation, credentials, every decision with its delegation chain and policies,
approvals, leases, findings and how it ended — sorted into sections by a table of record-type
prefixes, so record types other features add land in their section (or ``other``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

from warden.core.governance import AuditQuery
from warden.core.model import AuditRecord, Task
from warden.core.ports import Store
from warden.errors import InvalidParameterError, NotFoundError
from warden.service.tasks import task_view

SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("start", ("task.started", "task.refused")),
    ("credentials", ("credential.",)),
    ("decisions", ("authz.decision",)),
    ("approvals", ("approval.",)),
    ("leases", ("lease.",)),
    ("findings", ("finding.", "behaviour.")),
    ("delegation", ("delegation.",)),
    ("end", ("task.",)),
)
MAX_STORY_RECORDS = 20_000
DECISIONS = ("allow", "deny")


def section_of(record_type: str) -> str:
    for name, prefixes in SECTIONS:
        if any(
            record_type == p or (p.endswith(".") and record_type.startswith(p)) for p in prefixes
        ):
            return name
    return "other"


def query_from(params: dict[str, Any]) -> AuditQuery:
    """An AuditQuery from request/CLI parameters (strings); unknown values are errors."""
    decision = params.get("decision")
    if decision is not None and decision not in DECISIONS:
        raise InvalidParameterError("`decision` must be allow or deny")
    subtree = str(params.get("subtree", "")).lower() in ("1", "true", "yes")
    for key in ("agent", "owner", "task", "on_behalf_of", "tool", "policy", "type", "decision_id"):
        value = params.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > 500):
            raise InvalidParameterError(f"`{key}` must be a string of at most 500 characters")
    return AuditQuery(
        type_prefix=params.get("type") or None,
        agent=params.get("agent"),
        owner=params.get("owner"),
        task_id=params.get("task"),
        subtree=subtree,
        on_behalf_of=params.get("on_behalf_of"),
        action=params.get("tool"),
        decision=decision,
        policy=params.get("policy"),
        since=params.get("since"),
        until=params.get("until"),
        decision_id=params.get("decision_id"),
    )


class AttributionService:
    def __init__(self, store: Store) -> None:
        self._store = store

    def search(self, query: AuditQuery, *, after: int = 0, limit: int = 100) -> list[AuditRecord]:
        return self._store.search_audit(query, after_seq=after, limit=limit)

    def _records(self, task_id: str) -> Iterator[AuditRecord]:
        after = 0
        query = AuditQuery(task_id=task_id)
        while True:
            page = self._store.search_audit(query, after_seq=after, limit=1000)
            yield from page
            if len(page) < 1000:
                return
            after = page[-1].seq

    def story(self, task_id: str) -> dict[str, Any]:
        tasks = self._store.task_subtree(task_id)  # NotFoundError for an unknown task
        by_id = {t.id: t for t in tasks}
        children: dict[str | None, list[Task]] = {}
        for t in tasks:
            children.setdefault(t.parent_id, []).append(t)
        budget = [MAX_STORY_RECORDS]

        def build(task: Task) -> dict[str, Any]:
            try:
                owner: str | None = self._store.fetch_agent(task.agent_name).owner
            except NotFoundError:
                owner = None
            sections: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in SECTIONS}
            sections["other"] = []
            for rec in self._records(task.id):
                if budget[0] <= 0:
                    break
                budget[0] -= 1
                entry = asdict(rec)
                if rec.type == "authz.decision":
                    entry["chain"] = rec.data.get("chain") or _chain(task, by_id)
                    entry["policies"] = rec.data.get("reasons") or []
                sections[section_of(rec.type)].append(entry)
            return {
                "task": task_view(task),
                "agent_owner": owner,
                "on_behalf_of": task.on_behalf_of,
                "chain": _chain(task, by_id),
                "attestation": task.attestation,
                **sections,
                "subtasks": [build(c) for c in children.get(task.id, [])],
            }

        story = build(by_id[task_id])
        story["truncated"] = budget[0] <= 0
        return story


def _chain(task: Task, by_id: dict[str, Task]) -> list[str]:
    """The delegation chain, originator first, as far as the subtree reaches."""
    chain = [task.spiffe_id]
    seen = {task.id}
    current = task
    while current.parent_id and current.parent_id in by_id and current.parent_id not in seen:
        current = by_id[current.parent_id]
        seen.add(current.id)
        chain.insert(0, current.spiffe_id)
    return chain
