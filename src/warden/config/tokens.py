"""Task credentials, delegation, proof of possession and the signing keys.

YAML ``tokens: {ttl, max_ttl, task_ttl, max_task_ttl, operator_ttl, audiences}``,
``delegation: {max_depth}``, ``dpop: {required_risk_tiers, max_age}``,
``keys: {kek_file, retire_grace}``; env ``WARDEN_KEY_ENCRYPTION_KEY``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warden.config._values import Rel, duration, section
from warden.errors import InvalidParameterError

_TIERS = ("low", "medium", "high", "critical")


@dataclass(frozen=True, slots=True)
class TokenSettings:
    credential_ttl: float
    credential_max_ttl: float
    task_ttl: float
    task_max_ttl: float
    operator_token_ttl: float
    accepted_audiences: tuple[str, ...]  # the issuer first, then ``tokens.audiences``
    max_delegation_depth: int
    dpop_required_tiers: frozenset[str]
    dpop_max_age: float


@dataclass(frozen=True, slots=True)
class KeySettings:
    key_encryption_key: str | None = field(repr=False)
    kek_file: Path  # the effective one: ``keys.kek_file`` or <data dir>/keys/kek
    retire_grace: float


def tokens_yaml(raw: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    tokens = raw.get("tokens") or {}
    for key, attr in (
        ("ttl", "credential_ttl"),
        ("max_ttl", "credential_max_ttl"),
        ("task_ttl", "task_ttl"),
        ("max_task_ttl", "task_max_ttl"),
        ("operator_ttl", "operator_token_ttl"),
    ):
        if key in tokens:
            out[attr] = duration(tokens[key], f"tokens.{key}")
    if "audiences" in tokens:
        out["audiences"] = tuple(str(a) for a in tokens["audiences"])
    return out


def delegation_yaml(raw: dict[str, Any], rel: Rel) -> dict[str, Any]:
    """The ``delegation``, ``dpop`` and ``keys`` sections."""
    out: dict[str, Any] = {}
    delegation = section(raw, "delegation")
    if "max_depth" in delegation:
        depth = delegation["max_depth"]
        if isinstance(depth, bool) or not isinstance(depth, int) or not 0 <= depth <= 16:
            raise InvalidParameterError("config `delegation.max_depth` must be 0..16")
        out["max_delegation_depth"] = depth
    dpop = section(raw, "dpop")
    if "required_risk_tiers" in dpop:
        tiers = dpop["required_risk_tiers"] or []
        if not isinstance(tiers, list) or any(t not in _TIERS for t in tiers):
            raise InvalidParameterError(
                "config `dpop.required_risk_tiers` must list low, medium, high or critical"
            )
        out["dpop_required_tiers"] = tuple(tiers)
    if "max_age" in dpop:
        out["dpop_max_age"] = duration(dpop["max_age"], "dpop.max_age")
    keys = section(raw, "keys")
    if "kek_file" in keys:
        out["kek_file"] = rel(str(keys["kek_file"]))
    if "retire_grace" in keys:
        out["key_retire_grace"] = duration(keys["retire_grace"], "keys.retire_grace")
    return out
