"""Findings, baselines and enforcement modes: ``BehaviourStore`` and ``ModeStore`` over SQL."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from warden.core.model import (
    Baseline,
    EnforcementMode,
    Finding,
    ModeSetting,
    Severity,
)
from warden.errors import (
    NotFoundError,
)
from warden.storage.sql.codec import dump as _dump
from warden.storage.sql.codec import load_tuple as _load_tuple
from warden.storage.sql.engine import SQLBase
from warden.storage.sql.rows import before as _before
from warden.storage.sql.rows import limit as _limit
from warden.storage.sql.tables import (
    agent_baselines,
    enforcement_modes,
    findings,
)


def _finding_row(f: Finding) -> dict[str, Any]:
    return {
        "id": f.id,
        "agent": f.agent,
        "detector": f.detector,
        "severity": Severity(f.severity).value,
        "summary": f.summary,
        "created_at": float(f.created_at),
        "facts": _dump(f.facts),
        "task_id": f.task_id,
        "decision_id": f.decision_id,
        "score": int(f.score),
        "actions": _dump(list(f.actions)),
    }


def _finding(m: RowMapping) -> Finding:
    return Finding(
        id=m["id"],
        agent=m["agent"],
        detector=m["detector"],
        severity=Severity(m["severity"]),
        summary=m["summary"],
        created_at=m["created_at"],
        facts=json.loads(m["facts"]),
        task_id=m["task_id"],
        decision_id=m["decision_id"],
        score=int(m["score"]),
        actions=_load_tuple(m["actions"]),
    )


def _mode(m: RowMapping) -> ModeSetting:
    return ModeSetting(
        kind=m["kind"],
        value=m["value"],
        mode=EnforcementMode(m["mode"]),
        updated_at=m["updated_at"],
        updated_by=m["updated_by"],
    )


class BehaviourSQL(SQLBase):
    """``BehaviourStore`` (findings, baselines) and ``ModeStore`` (enforcement modes)."""

    # -- behaviour -------------------------------------------------------------------------

    def create_findings(self, items: Sequence[Finding]) -> None:
        if not items:
            return
        with self._tx(write=True, conflict="a finding with this id already exists") as conn:
            conn.execute(sa.insert(findings), [_finding_row(f) for f in items])

    def list_findings(
        self,
        *,
        agent: str | None = None,
        severity: str | None = None,
        since: float | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[Finding]:
        query = (
            sa.select(findings)
            .order_by(findings.c.created_at.desc(), findings.c.id.desc())
            .limit(_limit(limit))
        )
        if agent is not None:
            query = query.where(findings.c.agent == agent)
        if severity is not None:
            query = query.where(findings.c.severity == Severity(severity).value)
        if since is not None:
            query = query.where(findings.c.created_at >= float(since))
        with self._tx(write=False) as conn:
            if after is not None:
                query = query.where(_before(conn, findings, after))
            return [_finding(m) for m in conn.execute(query).mappings()]

    def put_baseline(self, baseline: Baseline) -> None:
        values = {
            "agent": baseline.agent,
            "declared": _dump(baseline.declared),
            "learned": _dump(baseline.learned),
            "updated_at": float(baseline.updated_at),
        }
        with self._tx(write=True) as conn:
            insert = self._insert(conn, agent_baselines).values(**values)
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=["agent"],
                    set_={k: values[k] for k in ("declared", "learned", "updated_at")},
                )
            )

    def list_baselines(self) -> list[Baseline]:
        query = sa.select(agent_baselines).order_by(agent_baselines.c.agent)
        with self._tx(write=False) as conn:
            return [
                Baseline(
                    agent=m["agent"],
                    declared=json.loads(m["declared"]),
                    learned=json.loads(m["learned"]),
                    updated_at=m["updated_at"],
                )
                for m in conn.execute(query).mappings()
            ]

    # -- enforcement modes ---------------------------------------------------------------

    def set_mode(self, setting: ModeSetting) -> None:
        values = {
            "kind": setting.kind,
            "value": setting.value,
            "mode": EnforcementMode(setting.mode).value,
            "updated_at": float(setting.updated_at),
            "updated_by": setting.updated_by,
        }
        with self._tx(write=True) as conn:
            insert = self._insert(conn, enforcement_modes).values(**values)
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=["kind", "value"],
                    set_={k: values[k] for k in ("mode", "updated_at", "updated_by")},
                )
            )

    def delete_mode(self, kind: str, value: str) -> None:
        """Remove an override; NotFoundError if there is none for (kind, value)."""
        with self._tx(write=True) as conn:
            result = conn.execute(
                sa.delete(enforcement_modes).where(
                    enforcement_modes.c.kind == kind, enforcement_modes.c.value == value
                )
            )
            if result.rowcount == 0:
                raise NotFoundError(f"no enforcement mode is set for {kind} `{value}`")

    def list_modes(self) -> list[ModeSetting]:
        query = sa.select(enforcement_modes).order_by(
            enforcement_modes.c.kind, enforcement_modes.c.value
        )
        with self._tx(write=False) as conn:
            return [_mode(m) for m in conn.execute(query).mappings()]
