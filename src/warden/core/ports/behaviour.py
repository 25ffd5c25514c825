"""Behaviour analytics: detector findings, per-agent baselines, and enforcement modes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from warden.core.model import Baseline, Finding, ModeSetting

__all__ = ["BehaviourStore", "ModeStore"]


class BehaviourStore(Protocol):
    """Findings of the behaviour detectors and each agent's baseline."""

    def create_findings(self, findings: Sequence[Finding]) -> None: ...

    def list_findings(
        self,
        *,
        agent: str | None = None,
        severity: str | None = None,
        since: float | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[Finding]:
        """Newest first (created_at, id descending); ``after``: last id of the previous page."""
        ...

    def put_baseline(self, baseline: Baseline) -> None:
        """Upsert by agent."""
        ...

    def list_baselines(self) -> list[Baseline]: ...


class ModeStore(Protocol):
    """Enforcement-mode overrides (enforce / shadow) by (kind, value)."""

    def set_mode(self, setting: ModeSetting) -> None:
        """Upsert by (kind, value)."""
        ...

    def delete_mode(self, kind: str, value: str) -> None: ...

    def list_modes(self) -> list[ModeSetting]: ...
