"""Enforcement modes: enforce (default) or monitor, per agent or per risk tier.

Policy-level modes are annotations (``@mode("monitor")``) handled by the PDP; agent and tier
modes live in the database (changes are audited) with tier defaults from the config file.
Precedence: agent setting > tier setting in the database > tier default from config > enforce.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from warden.core.clock import Clock
from warden.core.model import Agent, EnforcementMode, ModeSetting, RiskTier
from warden.core.ports import ModeStore
from warden.errors import InvalidParameterError
from warden.service.auditing import Auditor

KINDS = ("agent", "risk_tier")


class ModeService:
    def __init__(
        self,
        store: ModeStore,
        auditor: Auditor,
        clock: Clock,
        tier_defaults: dict[str, str],
        *,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self._store = store
        self._audit = auditor
        self._clock = clock
        self._defaults = {k: EnforcementMode(v) for k, v in tier_defaults.items()}
        self._settings: dict[tuple[str, str], EnforcementMode] = {}
        self._on_change = on_change  # tells other replicas (replication)

    def load(self) -> None:
        self._settings = {(s.kind, s.value): s.mode for s in self._store.list_modes()}

    def mode_for(self, agent: Agent) -> tuple[EnforcementMode, str]:
        if not self._settings and not self._defaults:
            return EnforcementMode.ENFORCE, ""
        by_agent = self._settings.get(("agent", agent.name))
        if by_agent is not None:
            return by_agent, "agent"
        tier = agent.risk_tier.value
        by_tier = self._settings.get(("risk_tier", tier)) or self._defaults.get(tier)
        if by_tier is not None:
            return by_tier, "risk_tier"
        return EnforcementMode.ENFORCE, ""

    def set(self, kind: str, value: str, mode: str, actor: str) -> ModeSetting:
        if kind not in KINDS:
            raise InvalidParameterError(f"mode kind must be agent or risk_tier, not `{kind}`")
        if kind == "risk_tier" and value not in {t.value for t in RiskTier}:
            raise InvalidParameterError(f"unknown risk tier `{value}`")
        try:
            parsed = EnforcementMode(mode)
        except ValueError:
            raise InvalidParameterError(f"mode must be enforce or monitor, not `{mode}`") from None
        previous = self._settings.get((kind, value))
        setting = ModeSetting(kind, value, parsed, self._clock.now(), actor)
        self._store.set_mode(setting)
        self._settings[(kind, value)] = parsed
        self._audit.record(
            "policy.mode_changed",
            actor,
            {
                "kind": kind,
                "value": value,
                "from": previous.value if previous else None,
                "to": parsed.value,
            },
            agent=value if kind == "agent" else None,
        )
        self._changed()
        return setting

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()

    def clear(self, kind: str, value: str, actor: str) -> None:
        previous = self._settings.pop((kind, value), None)
        self._store.delete_mode(kind, value)
        self._audit.record(
            "policy.mode_changed",
            actor,
            {
                "kind": kind,
                "value": value,
                "from": previous.value if previous else None,
                "to": None,
            },
            agent=value if kind == "agent" else None,
        )
        self._changed()

    def view(self) -> dict[str, Any]:
        return {
            "agents": {v: m.value for (k, v), m in self._settings.items() if k == "agent"},
            "risk_tiers": {
                **{k: m.value for k, m in self._defaults.items()},
                **{v: m.value for (k, v), m in self._settings.items() if k == "risk_tier"},
            },
        }
