"""Replicas acting as one (ADR 0092) and the short-lived downstream credentials (leases).

YAML ``replication: {advertise_url, resync_interval, heartbeat_interval, housekeeping_interval,
max_staleness}`` (env ``WARDEN_REPLICATION_MAX_STALENESS``) and
``leases: {reaper_interval, postgres, services}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from warden.config._values import duration, section
from warden.errors import InvalidParameterError


@dataclass(frozen=True, slots=True)
class ReplicationSettings:
    advertise_url: str | None  # the URL others reach this replica at; None: serves no API
    resync_interval: float
    heartbeat_interval: float
    housekeeping_interval: float
    max_staleness: float


@dataclass(frozen=True, slots=True)
class LeaseSettings:
    postgres: dict[str, dict[str, Any]]  # raw target definitions, validated when Warden starts
    services: dict[str, dict[str, Any]]
    reaper_interval: float


def replication_yaml(raw: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    replication = section(raw, "replication")
    if "advertise_url" in replication:
        out["advertise_url"] = str(replication["advertise_url"])
    for key, attr in (
        ("resync_interval", "resync_interval"),
        ("heartbeat_interval", "heartbeat_interval"),
        ("housekeeping_interval", "housekeeping_interval"),
        ("max_staleness", "replication_max_staleness"),
    ):
        if key in replication:
            out[attr] = duration(replication[key], f"replication.{key}")
    return out


def leases_yaml(raw: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    leases = section(raw, "leases")
    if "reaper_interval" in leases:
        out["lease_reaper_interval"] = duration(leases["reaper_interval"], "leases.reaper_interval")
    for key, attr in (("postgres", "lease_postgres"), ("services", "lease_services")):
        entries = leases.get(key) or {}
        if not isinstance(entries, dict) or not all(isinstance(v, dict) for v in entries.values()):
            raise InvalidParameterError(f"config `leases.{key}` must map names to mappings")
        parsed: dict[str, dict[str, Any]] = {}
        for name, entry in entries.items():
            parsed[str(name)] = dict(entry)
            if "max_ttl" in entry:
                where = f"leases.{key}.{name}.max_ttl"
                parsed[str(name)]["max_ttl"] = duration(entry["max_ttl"], where)
        out[attr] = parsed
    return out
