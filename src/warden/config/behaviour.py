"""Behavioural governance: baselines, budgets, thresholds (docs/behaviour.md).

YAML ``behaviour: {enabled, window, score_window, step_up_for, budget_window, rate_min_calls,
deny_streak, scope_creep, fan_out, min_history, rate_factor, high_risk_actions, intents,
thresholds}``. The settings object is ``warden.behaviour.BehaviourSettings``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from warden.behaviour import BehaviourSettings, Thresholds
from warden.config._values import duration, integer, strings
from warden.errors import InvalidParameterError

_BEHAVIOUR_DURATIONS = ("window", "score_window", "step_up_for", "budget_window")
_BEHAVIOUR_INTS = ("rate_min_calls", "deny_streak", "scope_creep", "fan_out", "min_history")
_BEHAVIOUR_KEYS = {
    *_BEHAVIOUR_DURATIONS,
    *_BEHAVIOUR_INTS,
    "enabled",
    "rate_factor",
    "high_risk_actions",
    "intents",
    "thresholds",
}


def behaviour_yaml(raw: dict[str, Any]) -> BehaviourSettings:
    unknown = set(raw) - _BEHAVIOUR_KEYS
    if unknown:
        raise InvalidParameterError(f"unknown config key `behaviour.{sorted(unknown)[0]}`")
    defaults = BehaviourSettings()
    out: dict[str, Any] = {}
    for key in _BEHAVIOUR_DURATIONS:
        if key in raw:
            out[key] = duration(raw[key], f"behaviour.{key}")
            if out[key] <= 0:
                raise InvalidParameterError(f"config `behaviour.{key}` must be positive")
    for key in _BEHAVIOUR_INTS:
        if key in raw:
            out[key] = integer(raw[key], f"behaviour.{key}")
    if "enabled" in raw:
        out["enabled"] = bool(raw["enabled"])
    if "rate_factor" in raw:
        factor = raw["rate_factor"]
        if isinstance(factor, bool) or not isinstance(factor, int | float) or factor <= 0:
            raise InvalidParameterError("config `behaviour.rate_factor` must be a positive number")
        out["rate_factor"] = float(factor)
    if "high_risk_actions" in raw:
        out["high_risk_actions"] = frozenset(
            strings(raw["high_risk_actions"], "behaviour.high_risk_actions")
        )
    intents = raw.get("intents") or {}
    if not isinstance(intents, dict):
        raise InvalidParameterError("config `behaviour.intents` maps categories to intents")
    out["intents"] = {
        str(c): frozenset(strings(v, f"behaviour.intents.{c}")) for c, v in intents.items()
    }
    thresholds = dict(defaults.thresholds)
    for tier, spec in (raw.get("thresholds") or {}).items():
        if not isinstance(spec, dict) or set(spec) - {"notify", "step_up", "suspend"}:
            raise InvalidParameterError(
                f"config `behaviour.thresholds.{tier}` must be {{notify, step_up, suspend}}"
            )
        base = thresholds.get(str(tier)) or Thresholds()
        values = {k: integer(v, f"behaviour.thresholds.{tier}.{k}") for k, v in spec.items()}
        thresholds[str(tier)] = replace(base, **values)
    out["thresholds"] = thresholds
    return BehaviourSettings(**out)
