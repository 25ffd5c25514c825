"""``BehaviourStore`` (findings, baselines) and ``ModeStore`` (enforcement modes) in memory."""

from __future__ import annotations

from collections.abc import Sequence

from warden.core.model import Baseline, EnforcementMode, Finding, ModeSetting, Severity
from warden.errors import ConflictError, NotFoundError
from warden.storage.memory._base import MemoryBase, before_cursor, stored
from warden.storage.memory._base import limit as _limit


class BehaviourMemory(MemoryBase):
    def __init__(self) -> None:
        super().__init__()
        self._findings: dict[str, Finding] = {}
        self._baselines: dict[str, Baseline] = {}
        self._modes: dict[tuple[str, str], ModeSetting] = {}

    # -- findings and baselines ----------------------------------------------------------
    def create_findings(self, items: Sequence[Finding]) -> None:
        if not items:
            return
        with self._lock:
            ids = [f.id for f in items]
            if len(set(ids)) != len(ids) or any(i in self._findings for i in ids):
                raise ConflictError("a finding with this id already exists")
            for f in items:
                Severity(f.severity)
                self._findings[f.id] = stored(f)

    def list_findings(
        self,
        *,
        agent: str | None = None,
        severity: str | None = None,
        since: float | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[Finding]:
        with self._lock:
            rows = sorted(self._findings.values(), key=lambda f: (f.created_at, f.id), reverse=True)
            if agent is not None:
                rows = [f for f in rows if f.agent == agent]
            if severity is not None:
                wanted = Severity(severity)
                rows = [f for f in rows if Severity(f.severity) == wanted]
            if since is not None:
                rows = [f for f in rows if f.created_at >= float(since)]
            if after is not None:
                cursor = before_cursor(self._findings, after)
                rows = [f for f in rows if (float(f.created_at), f.id) < cursor]
            return [stored(f) for f in rows[: _limit(limit)]]

    def put_baseline(self, baseline: Baseline) -> None:
        with self._lock:
            self._baselines[baseline.agent] = stored(baseline)

    def list_baselines(self) -> list[Baseline]:
        with self._lock:
            return [stored(self._baselines[k]) for k in sorted(self._baselines)]

    # -- enforcement modes -------------------------------------------------------------
    def set_mode(self, setting: ModeSetting) -> None:
        mode = EnforcementMode(setting.mode)
        with self._lock:
            self._modes[(setting.kind, setting.value)] = ModeSetting(
                kind=setting.kind,
                value=setting.value,
                mode=mode,
                updated_at=float(setting.updated_at),
                updated_by=setting.updated_by,
            )

    def delete_mode(self, kind: str, value: str) -> None:
        with self._lock:
            if self._modes.pop((kind, value), None) is None:
                raise NotFoundError(f"no enforcement mode is set for {kind} `{value}`")

    def list_modes(self) -> list[ModeSetting]:
        with self._lock:
            return [self._modes[k] for k in sorted(self._modes)]
