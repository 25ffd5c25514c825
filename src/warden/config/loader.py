"""``load_settings``: defaults < the YAML file (``--config``) < environment (``WARDEN_*``) <
command-line flags. Read once in the entry points (``warden serve``, the CLI), never at import
time. Each YAML section is read by the module of its feature; the keys are documented in the
README ("Configuration").
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from warden.config._values import duration, section
from warden.config.approvals import approvals_yaml
from warden.config.audit import audit_yaml, durability
from warden.config.behaviour import behaviour_yaml
from warden.config.counters import counters_yaml
from warden.config.governance import enforcement_yaml, governance_yaml
from warden.config.identity import identity_yaml
from warden.config.observability import LOG_LEVELS, log_yaml, observability_yaml
from warden.config.replication import leases_yaml, replication_yaml
from warden.config.server import server_yaml, tls_yaml
from warden.config.settings import Settings
from warden.config.tokens import delegation_yaml, tokens_yaml
from warden.config.webhooks import webhooks_yaml
from warden.errors import InvalidParameterError

__all__ = ["load_settings"]


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    settings = Settings()
    if config_file is not None:
        settings = _from_yaml(settings, config_file)
    settings = settings.with_overrides(**_from_env())
    settings = settings.with_overrides(**overrides)
    if settings.log_level not in LOG_LEVELS:
        raise InvalidParameterError(f"`WARDEN_LOG_LEVEL` must be one of {', '.join(LOG_LEVELS)}")
    if not 0.05 <= settings.replication_max_staleness <= 3600:
        raise InvalidParameterError("`replication.max_staleness` must be between 50ms and 1h")
    if settings.credential_ttl > settings.credential_max_ttl:
        raise InvalidParameterError("`tokens.ttl` must not exceed `tokens.max_ttl`")
    return settings


def _from_env() -> dict[str, Any]:
    env = os.environ
    return {
        "host": env.get("WARDEN_HOST"),
        "port": int(env["WARDEN_PORT"]) if env.get("WARDEN_PORT") else None,
        "data_dir": Path(env["WARDEN_DATA_DIR"]) if env.get("WARDEN_DATA_DIR") else None,
        "database_url": env.get("WARDEN_DATABASE_URL"),
        "policies_dir": Path(env["WARDEN_POLICIES"]) if env.get("WARDEN_POLICIES") else None,
        "issuer": env.get("WARDEN_ISSUER"),
        "key_encryption_key": env.get("WARDEN_KEY_ENCRYPTION_KEY") or None,
        "log_level": env.get("WARDEN_LOG_LEVEL", "").lower() or None,
        "otlp_endpoint": env.get("WARDEN_OTLP_ENDPOINT") or None,
        "counters_url": env.get("WARDEN_COUNTERS_URL") or None,
        "audit_durability": durability(env["WARDEN_AUDIT_DURABILITY"], "WARDEN_AUDIT_DURABILITY")
        if env.get("WARDEN_AUDIT_DURABILITY")
        else None,
        "replication_max_staleness": duration(
            env["WARDEN_REPLICATION_MAX_STALENESS"], "WARDEN_REPLICATION_MAX_STALENESS"
        )
        if env.get("WARDEN_REPLICATION_MAX_STALENESS")
        else None,
    }


def _from_yaml(settings: Settings, path: Path) -> Settings:
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidParameterError(f"cannot read config `{path}`: {exc}") from exc
    if not isinstance(raw, dict):
        raise InvalidParameterError(f"config `{path}` must be a mapping")
    base = path.parent.resolve()

    def rel(p: str) -> Path:
        q = Path(p)
        return q if q.is_absolute() else base / q

    server = raw.get("server") or {}
    out: dict[str, Any] = {"config_dir": base}
    out.update(server_yaml(server, rel))
    out.update(counters_yaml(section(raw, "counters")))
    out.update(tokens_yaml(raw))
    out.update(identity_yaml(raw, rel))
    out.update(tls_yaml(server, rel))
    out.update(enforcement_yaml(raw))
    out.update(delegation_yaml(raw, rel))
    out.update(replication_yaml(raw))
    out.update(leases_yaml(raw))
    out.update(governance_yaml(raw))
    out.update(audit_yaml(raw, rel))
    if raw.get("approvals") is not None:
        out["approvals"] = approvals_yaml(section(raw, "approvals"))
    if raw.get("behaviour") is not None:
        out["behaviour"] = behaviour_yaml(section(raw, "behaviour"))
    if raw.get("webhooks") is not None:
        out.update(webhooks_yaml(section(raw, "webhooks"), rel))
    if raw.get("log") is not None:
        out.update(log_yaml(section(raw, "log")))
    out.update(observability_yaml(raw))
    return replace(settings, **out)
