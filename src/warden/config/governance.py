"""Governance (issue 7): agent lifecycle checks and certification; enforcement modes by tier.

YAML ``governance: {orphan_grace, unused_after, flag_grace, interval, certification: {window,
on_timeout}}`` and ``enforcement: {risk_tiers: {<tier>: enforce | monitor}}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from warden.config._values import duration
from warden.errors import InvalidParameterError


@dataclass(frozen=True, slots=True)
class GovernanceSettings:
    orphan_grace: float
    unused_after: float
    flag_grace: float
    interval: float
    certification_window: float
    certification_on_timeout: str  # reduce | suspend


def governance_yaml(raw: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    gov = raw.get("governance") or {}
    for key, attr in (
        ("orphan_grace", "orphan_grace"),
        ("unused_after", "unused_after"),
        ("flag_grace", "flag_grace"),
        ("interval", "governance_interval"),
    ):
        if key in gov:
            out[attr] = duration(gov[key], f"governance.{key}")
    cert = gov.get("certification") or {}
    if "window" in cert:
        out["certification_window"] = duration(cert["window"], "governance.certification.window")
    if "on_timeout" in cert:
        if cert["on_timeout"] not in ("reduce", "suspend"):
            raise InvalidParameterError(
                "config `governance.certification.on_timeout` must be reduce or suspend"
            )
        out["certification_on_timeout"] = str(cert["on_timeout"])
    return out


def enforcement_yaml(raw: dict[str, Any]) -> dict[str, Any]:
    enforcement = raw.get("enforcement") or {}
    tiers = enforcement.get("risk_tiers") or {}
    for tier, mode in tiers.items():
        if mode not in ("enforce", "monitor"):
            raise InvalidParameterError(
                f"config `enforcement.risk_tiers.{tier}` must be enforce or monitor"
            )
    return {"tier_modes": {str(k): str(v) for k, v in tiers.items()}} if tiers else {}
