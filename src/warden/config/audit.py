"""The audit log: durability (ADR 0090), signed checkpoints and export.

YAML ``audit: {durability, max_wait, checkpoint_interval, checkpoint_sinks, export,
export_interval}``; env ``WARDEN_AUDIT_DURABILITY``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from warden.config._values import Rel, duration
from warden.errors import InvalidParameterError


@dataclass(frozen=True, slots=True)
class AuditSettings:
    # durable: answer only once the record is committed; async: an embedded PDP's explicit
    # choice to answer first (loss window: what is in memory). docs/reliability.md, ADR 0090
    durability: str
    max_wait: float  # longer than this not durable: audit_unavailable
    checkpoint_interval: float
    checkpoint_sinks: tuple[str, ...]
    export_sinks: tuple[tuple[str, str], ...]  # (file path or http(s) url, ocsf | jsonl)
    export_interval: float


def durability(value: Any, key: str) -> str:
    text = str(value).lower()
    if text not in ("durable", "async"):
        raise InvalidParameterError(f"`{key}` must be durable or async")
    return text


def audit_yaml(raw: dict[str, Any], rel: Rel) -> dict[str, Any]:
    out: dict[str, Any] = {}
    audit = raw.get("audit") or {}
    if "checkpoint_interval" in audit:
        out["checkpoint_interval"] = duration(
            audit["checkpoint_interval"], "audit.checkpoint_interval"
        )
    if "export_interval" in audit:
        out["export_interval"] = duration(audit["export_interval"], "audit.export_interval")
    if "durability" in audit:
        out["audit_durability"] = durability(audit["durability"], "audit.durability")
    if "max_wait" in audit:
        out["audit_max_wait"] = duration(audit["max_wait"], "audit.max_wait")
        if out["audit_max_wait"] <= 0:
            raise InvalidParameterError("config `audit.max_wait` must be positive")

    def target(value: Any) -> str:
        text = str(value)
        return text if text.startswith(("http://", "https://")) else str(rel(text))

    if "checkpoint_sinks" in audit:
        out["checkpoint_sinks"] = tuple(target(t) for t in audit["checkpoint_sinks"] or [])
    sinks = []
    for entry in audit.get("export") or []:
        if not isinstance(entry, dict) or "target" not in entry:
            raise InvalidParameterError("config `audit.export` entries need a `target`")
        fmt = str(entry.get("format", "ocsf"))
        if fmt not in ("ocsf", "jsonl"):
            raise InvalidParameterError("config `audit.export` format must be ocsf or jsonl")
        sinks.append((target(entry["target"]), fmt))
    if sinks:
        out["export_sinks"] = tuple(sinks)
    return out
