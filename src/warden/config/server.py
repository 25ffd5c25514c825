"""The HTTP listener and its limits; where the data lives; the policy folder.

YAML ``server:`` — ``host``, ``port``, ``issuer``, ``database_url``, ``data_dir``, ``policies``,
``max_body_bytes``, ``policy_reload_interval``, ``expiry_sweep_interval``,
``policy_max_staleness``, ``pep_api_keys``, ``tls: {cert_file, key_file}``, and the slow-client
limits ``{header,body,keep_alive}_timeout``, ``max_connections`` (ADR 0095).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from warden.config._values import Rel, duration, integer
from warden.errors import InvalidParameterError


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """The listener: address, TLS, who may call it, and how slow or many clients may be."""

    host: str
    port: int
    issuer: str  # the effective one: ``server.issuer`` or http(s)://host:port
    tls_cert_file: Path | None
    tls_key_file: Path | None
    pep_api_keys: tuple[str, ...]
    max_body_bytes: int
    header_timeout: float
    body_timeout: float
    keep_alive_timeout: float
    max_connections: int


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    """The system of record: ``database_url`` (SQLite in ``data_dir`` when None)."""

    url: str | None
    data_dir: Path


@dataclass(frozen=True, slots=True)
class PolicySettings:
    """The policy folder and how a replica follows the active revision (ADR 0120)."""

    folder: Path | None
    reload_interval: float
    max_staleness: float


def server_yaml(server: dict[str, Any], rel: Rel) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("host", "issuer", "database_url"):
        if key in server:
            out[key] = str(server[key])
    if "port" in server:
        out["port"] = int(server["port"])
    if "data_dir" in server:
        out["data_dir"] = rel(server["data_dir"])
    if "policies" in server:
        out["policies_dir"] = rel(server["policies"])
    if "max_body_bytes" in server:
        out["max_body_bytes"] = int(server["max_body_bytes"])
    for key in ("policy_reload_interval", "expiry_sweep_interval", "policy_max_staleness"):
        if key in server:
            out[key] = duration(server[key], f"server.{key}")
    if "pep_api_keys" in server:
        out["pep_api_keys"] = tuple(str(k) for k in server["pep_api_keys"])
    out.update(_limits_yaml(server))
    return out


def tls_yaml(server: dict[str, Any], rel: Rel) -> dict[str, Any]:
    tls = server.get("tls") or {}
    if not tls:
        return {}
    if not isinstance(tls, dict) or "cert_file" not in tls or "key_file" not in tls:
        raise InvalidParameterError("config `server.tls` needs `cert_file` and `key_file`")
    return {"tls_cert_file": rel(str(tls["cert_file"])), "tls_key_file": rel(str(tls["key_file"]))}


def _limits_yaml(server: dict[str, Any]) -> dict[str, Any]:
    """``server.{header,body,keep_alive}_timeout``, ``server.max_connections`` (ADR 0095)."""
    out: dict[str, Any] = {}
    for key in ("header_timeout", "body_timeout", "keep_alive_timeout"):
        if key in server:
            out[key] = duration(server[key], f"server.{key}")
            if out[key] <= 0:
                raise InvalidParameterError(f"config `server.{key}` must be positive")
    if "max_connections" in server:
        out["max_connections"] = integer(server["max_connections"], "server.max_connections")
        if out["max_connections"] < 1:
            raise InvalidParameterError("config `server.max_connections` must be at least 1")
    return out
