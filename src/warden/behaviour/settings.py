"""Behaviour settings (the ``behaviour:`` section of the config file)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from warden.core.model import Severity

POINTS = {Severity.LOW: 1, Severity.MEDIUM: 3, Severity.HIGH: 6, Severity.CRITICAL: 10}


@dataclass(frozen=True)
class Thresholds:
    """Behaviour-score levels at which escalation acts (record always happens)."""

    notify: int = 3
    step_up: int = 6
    suspend: int = 15


DEFAULT_THRESHOLDS: Mapping[str, Thresholds] = {
    "low": Thresholds(),
    "medium": Thresholds(),
    "high": Thresholds(notify=1, step_up=3, suspend=10),
    "critical": Thresholds(notify=1, step_up=3, suspend=6),
}


@dataclass(frozen=True)
class BehaviourSettings:
    enabled: bool = True
    window: float = 60.0  # the learning and rate window
    buckets: int = 12
    score_window: float = 600.0  # findings count towards the score for this long
    rate_factor: float = 4.0  # a spike is this many times the baseline rate…
    rate_min_calls: int = 20  # …and more than this many calls in one window
    deny_streak: int = 5
    scope_creep: int = 3  # out-of-scope requests in one window
    fan_out: int = 10  # distinct tasks (or delegated subtasks) in one window
    min_history: int = 3  # calm windows before a learned baseline flags novelty
    step_up_for: float = 900.0
    budget_window: float = 3600.0
    high_risk_actions: frozenset[str] = frozenset()
    intents: Mapping[str, frozenset[str]] = field(default_factory=dict)  # category -> intents
    thresholds: Mapping[str, Thresholds] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))

    def thresholds_for(self, risk_tier: str) -> Thresholds:
        return self.thresholds.get(risk_tier) or self.thresholds.get("default") or Thresholds()
