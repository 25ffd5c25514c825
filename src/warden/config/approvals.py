"""Step-up approvals: how long grants last, escalation, approver groups (docs/approvals.md).

YAML ``approvals: {grant_ttl, escalate_after, deny_cooldown, sweep_interval,
max_pending_per_agent, requests_per_hour, separation_of_duties, escalation, groups}``. The
settings object is ``warden.approvals.ApprovalSettings``; this module reads it from YAML.
"""

from __future__ import annotations

from typing import Any

from warden.approvals import ApprovalSettings, parse_level
from warden.config._values import duration, integer, strings
from warden.errors import InvalidParameterError


def _levels(value: Any, key: str) -> tuple[str, ...]:
    try:
        return tuple(parse_level(v) for v in strings(value, key))
    except ValueError as exc:
        raise InvalidParameterError(f"config `{key}`: {exc}") from None


_APPROVAL_DURATIONS = ("grant_ttl", "escalate_after", "deny_cooldown", "sweep_interval")
_APPROVAL_KEYS = {
    *_APPROVAL_DURATIONS,
    "max_pending_per_agent",
    "requests_per_hour",
    "separation_of_duties",
    "escalation",
    "groups",
}


def approvals_yaml(raw: dict[str, Any]) -> ApprovalSettings:
    unknown = set(raw) - _APPROVAL_KEYS
    if unknown:
        raise InvalidParameterError(f"unknown config key `approvals.{sorted(unknown)[0]}`")
    out: dict[str, Any] = {}
    for key in _APPROVAL_DURATIONS:
        if key in raw:
            out[key] = duration(raw[key], f"approvals.{key}")
    for key in ("max_pending_per_agent", "requests_per_hour"):
        if key in raw:
            out[key] = integer(raw[key], f"approvals.{key}")
    if "separation_of_duties" in raw:
        out["separation_of_duties"] = bool(raw["separation_of_duties"])
    escalation = raw.get("escalation") or {}
    if not isinstance(escalation, dict):
        raise InvalidParameterError("config `approvals.escalation` maps risk tiers to levels")
    out["escalation"] = {
        str(tier): _levels(levels, f"approvals.escalation.{tier}")
        for tier, levels in escalation.items()
    }
    groups = raw.get("groups") or {}
    if not isinstance(groups, dict):
        raise InvalidParameterError("config `approvals.groups` maps group names to people")
    out["groups"] = {
        str(name): frozenset(strings(members, f"approvals.groups.{name}"))
        for name, members in groups.items()
    }
    return ApprovalSettings(**out)
