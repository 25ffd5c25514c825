"""Settings: read once in the entry points (``warden serve``, the CLI), never at import time.

Precedence: command-line flags > environment (``WARDEN_*``) > the YAML file given with
``--config`` > defaults. The YAML keys are documented in the README ("Configuration").
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from warden.approvals import ApprovalSettings, parse_level
from warden.attestation.oidc import OIDCIssuer
from warden.behaviour import BehaviourSettings, Thresholds
from warden.core.duration import parse_duration
from warden.errors import InvalidParameterError
from warden.webhooks import WebhookEndpoint, decode_secret


@dataclass(frozen=True)
class TrustDomainConfig:
    """One SPIFFE trust domain: a bundle file or a bundle endpoint, plus optional PEM roots."""

    name: str
    bundle_file: Path | None = None
    x509_bundle_file: Path | None = None  # PEM roots for X.509-SVIDs (--tls-client-ca TD=PATH)
    bundle_endpoint: str | None = None  # SPIFFE bundle endpoint URL (https_web profile)
    bundle_endpoint_ca_file: Path | None = None  # private CA for that endpoint

    @property
    def source(self) -> str:
        """Where the bundle comes from, for humans."""
        parts = [str(p) for p in (self.bundle_file, self.x509_bundle_file) if p is not None]
        if self.bundle_endpoint:
            parts.append(self.bundle_endpoint)
        return ", ".join(parts)


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path(".warden")
    database_url: str | None = None
    policies_dir: Path | None = None
    issuer: str | None = None  # defaults to http://{host}:{port}
    # credentials
    credential_ttl: float = 300.0
    operator_token_ttl: float = 30 * 86400.0  # operator bearer tokens expire (issue 10)
    credential_max_ttl: float = 3600.0
    task_ttl: float = 3600.0
    task_max_ttl: float = 86400.0
    audiences: tuple[str, ...] = ()  # extra audiences credentials may be issued for
    # workload identity
    svid_audience: str = "warden"
    trust_domains: tuple[TrustDomainConfig, ...] = ()
    oidc_issuers: tuple[OIDCIssuer, ...] = ()
    # the local workload API (a Unix socket) and Warden's own trust domain
    workload_socket: Path | None = None
    workload_trust_domain: str = "warden.local"
    workload_svid_ttl: float = 300.0
    # TLS for the HTTP listener (X.509-SVIDs are client certificates)
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    # enforcement modes by risk tier (agent-level modes live in the database)
    tier_modes: dict[str, str] = field(default_factory=dict)
    # limits and loops
    max_body_bytes: int = 256 * 1024
    # slow and surplus clients (ADR 0095): headers due within header_timeout of the connection
    # or the previous response, the body within body_timeout of the headers
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keep_alive_timeout: float = 5.0
    max_connections: int = 1000
    # shared counters for budgets, rate windows and deny streaks across replicas (ADR 0094):
    # redis://… ; None keeps them in this process
    counters_url: str | None = None
    counters_timeout: float = 0.25
    counters_prefix: str = "warden"
    policy_reload_interval: float = 1.0  # also how often a replica checks the active revision
    # a replica that could not confirm it serves the active policy revision for longer than
    # this says so (/readyz 503, ADR 0120)
    policy_max_staleness: float = 10.0
    expiry_sweep_interval: float = 1.0
    pep_api_keys: tuple[str, ...] = ()  # required from PEPs when not bound to loopback
    seed_examples: bool = False
    config_dir: Path = Path(".")
    # delegation and proof of possession (docs/lifecycle.md)
    max_delegation_depth: int = 3
    dpop_required_tiers: tuple[str, ...] = ()
    dpop_max_age: float = 60.0
    # signing keys: sealed in the database under a key-encryption key kept outside it
    key_encryption_key: str | None = field(default=None, repr=False)
    kek_file: Path | None = None  # default <data dir>/keys/kek
    key_retire_grace: float = 60.0
    housekeeping_interval: float = 30.0
    # replicas
    advertise_url: str | None = None  # the URL other replicas and the CLI reach this one at
    serves_api: bool = True  # False: an in-process Warden (embedded PDP, MCP proxy) nobody can
    # reach, so it follows the change feed but is not listed as a replica
    resync_interval: float = 300.0  # a full re-read; notifications and reconnects cover the rest
    heartbeat_interval: float = 5.0
    # past this without a confirmed freshness round a replica refuses agent decisions with
    # `state_stale` and /readyz is 503 (ADR 0092); rounds run every min(1 s, bound / 5)
    replication_max_staleness: float = 5.0
    # leases: raw target/service definitions, validated when Warden starts
    lease_postgres: dict[str, dict[str, Any]] = field(default_factory=dict)
    lease_services: dict[str, dict[str, Any]] = field(default_factory=dict)
    lease_reaper_interval: float = 30.0
    # governance (issue 7): lifecycle checks, certification, checkpoints, export
    orphan_grace: float = 86400.0
    unused_after: float = 30 * 86400.0
    flag_grace: float = 7 * 86400.0
    governance_interval: float = 60.0
    certification_window: float = 14 * 86400.0
    certification_on_timeout: str = "reduce"
    checkpoint_interval: float = 300.0
    checkpoint_sinks: tuple[str, ...] = ()
    export_sinks: tuple[tuple[str, str], ...] = ()  # (file path or http(s) url, ocsf | jsonl)
    export_interval: float = 5.0
    # durable: answer only once the audit record is committed; async: an embedded PDP's explicit
    # choice to answer first (loss window: what is in memory). docs/reliability.md, ADR 0090
    audit_durability: str = "durable"
    audit_max_wait: float = 5.0  # longer than this not durable: audit_unavailable
    # step-up approvals, behavioural governance and the webhooks that tell people about them
    approvals: ApprovalSettings = field(default_factory=ApprovalSettings)
    behaviour: BehaviourSettings = field(default_factory=BehaviourSettings)
    webhooks: tuple[WebhookEndpoint, ...] = ()
    webhook_max_attempts: int = 6
    webhook_base_delay: float = 0.5
    webhook_timeout: float = 5.0
    # the server log (docs/console.md): its level, the level of the one line per decision,
    # approval, kill or policy change, and text or JSON (auto: JSON when stderr is not a TTY)
    log_level: str = "info"
    log_events_level: str = "info"
    log_format: str = "auto"
    # traces and Shared Signals (docs/observability.md)
    otlp_endpoint: str | None = None  # OTLP/HTTP collector base URL; None: tracing off
    otlp_headers: tuple[tuple[str, str], ...] = ()
    otlp_service_name: str = "warden"
    otlp_sample_ratio: float = 1.0
    signals_interval: float = 0.5  # how often the outbox is filled and pushed
    signals_max_backoff: float = 60.0  # push retries back off up to this
    signals_push_timeout: float = 5.0

    @property
    def effective_issuer(self) -> str:
        scheme = "https" if self.tls_cert_file is not None else "http"
        return self.issuer or f"{scheme}://{self.host}:{self.port}"

    @property
    def accepted_audiences(self) -> tuple[str, ...]:
        return (self.effective_issuer, *self.audiences)

    @property
    def effective_kek_file(self) -> Path:
        return self.kek_file or self.data_dir / "keys" / "kek"

    @property
    def effective_advertise_url(self) -> str:
        if self.advertise_url:
            return self.advertise_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "", "::") else self.host  # noqa: S104
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    @property
    def loopback(self) -> bool:
        return self.host in {"127.0.0.1", "localhost", "::1"}

    def with_overrides(self, **kwargs: Any) -> Settings:
        return replace(self, **{k: v for k, v in kwargs.items() if v is not None})


def _duration(value: Any, key: str) -> float:
    """Accept seconds (number) or a string like ``90s``, ``5m``, ``2h``, ``1d``."""
    try:
        return parse_duration(value)
    except ValueError:
        raise InvalidParameterError(
            f"config `{key}` must be a duration like `300`, `5m` or `1h`"
        ) from None


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    settings = Settings()
    if config_file is not None:
        settings = _from_yaml(settings, config_file)
    env = {
        "host": os.environ.get("WARDEN_HOST"),
        "port": int(os.environ["WARDEN_PORT"]) if os.environ.get("WARDEN_PORT") else None,
        "data_dir": Path(os.environ["WARDEN_DATA_DIR"])
        if os.environ.get("WARDEN_DATA_DIR")
        else None,
        "database_url": os.environ.get("WARDEN_DATABASE_URL"),
        "policies_dir": Path(os.environ["WARDEN_POLICIES"])
        if os.environ.get("WARDEN_POLICIES")
        else None,
        "issuer": os.environ.get("WARDEN_ISSUER"),
        "key_encryption_key": os.environ.get("WARDEN_KEY_ENCRYPTION_KEY") or None,
        "log_level": os.environ.get("WARDEN_LOG_LEVEL", "").lower() or None,
        "otlp_endpoint": os.environ.get("WARDEN_OTLP_ENDPOINT") or None,
        "counters_url": os.environ.get("WARDEN_COUNTERS_URL") or None,
        "audit_durability": _durability(
            os.environ["WARDEN_AUDIT_DURABILITY"], "WARDEN_AUDIT_DURABILITY"
        )
        if os.environ.get("WARDEN_AUDIT_DURABILITY")
        else None,
        "replication_max_staleness": _duration(
            os.environ["WARDEN_REPLICATION_MAX_STALENESS"], "WARDEN_REPLICATION_MAX_STALENESS"
        )
        if os.environ.get("WARDEN_REPLICATION_MAX_STALENESS")
        else None,
    }
    settings = settings.with_overrides(**env)
    settings = settings.with_overrides(**overrides)
    if settings.log_level not in LOG_LEVELS:
        raise InvalidParameterError(f"`WARDEN_LOG_LEVEL` must be one of {', '.join(LOG_LEVELS)}")
    if not 0.05 <= settings.replication_max_staleness <= 3600:
        raise InvalidParameterError("`replication.max_staleness` must be between 50ms and 1h")
    if settings.credential_ttl > settings.credential_max_ttl:
        raise InvalidParameterError("`tokens.ttl` must not exceed `tokens.max_ttl`")
    return settings


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

    out: dict[str, Any] = {"config_dir": base}
    server = raw.get("server") or {}
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
            out[key] = _duration(server[key], f"server.{key}")
    if "pep_api_keys" in server:
        out["pep_api_keys"] = tuple(str(k) for k in server["pep_api_keys"])
    out.update(_limits_yaml(server, _section(raw, "counters")))
    tokens = raw.get("tokens") or {}
    for key, attr in (
        ("ttl", "credential_ttl"),
        ("max_ttl", "credential_max_ttl"),
        ("task_ttl", "task_ttl"),
        ("max_task_ttl", "task_max_ttl"),
        ("operator_ttl", "operator_token_ttl"),
    ):
        if key in tokens:
            out[attr] = _duration(tokens[key], f"tokens.{key}")
    if "audiences" in tokens:
        out["audiences"] = tuple(str(a) for a in tokens["audiences"])
    spiffe = raw.get("spiffe") or {}
    if "audience" in spiffe:
        out["svid_audience"] = str(spiffe["audience"])
    domains = []
    for name, td in (spiffe.get("trust_domains") or {}).items():
        key = f"spiffe.trust_domains.{name}"
        known = {"bundle_file", "x509_bundle_file", "bundle_endpoint", "bundle_endpoint_ca_file"}
        if not isinstance(td, dict) or not ({"bundle_file", "bundle_endpoint"} & set(td)):
            raise InvalidParameterError(f"config `{key}` needs `bundle_file` or `bundle_endpoint`")
        unknown = sorted(set(td) - known)
        if unknown:
            raise InvalidParameterError(f"config `{key}.{unknown[0]}` is not a known key")
        if "bundle_file" in td and "bundle_endpoint" in td:
            raise InvalidParameterError(
                f"config `{key}`: give `bundle_file` or `bundle_endpoint`, not both"
            )
        domains.append(
            TrustDomainConfig(
                str(name),
                bundle_file=rel(str(td["bundle_file"])) if "bundle_file" in td else None,
                x509_bundle_file=rel(str(td["x509_bundle_file"]))
                if "x509_bundle_file" in td
                else None,
                bundle_endpoint=str(td["bundle_endpoint"]) if "bundle_endpoint" in td else None,
                bundle_endpoint_ca_file=rel(str(td["bundle_endpoint_ca_file"]))
                if "bundle_endpoint_ca_file" in td
                else None,
            )
        )
    if domains:
        out["trust_domains"] = tuple(domains)
    oidc = raw.get("oidc") or {}
    issuers = []
    for index, item in enumerate(oidc.get("issuers") or []):
        issuers.append(_oidc_issuer(item, f"oidc.issuers[{index}]", rel))
    if issuers:
        out["oidc_issuers"] = tuple(issuers)
    workload = raw.get("workload_api") or {}
    if "socket" in workload:
        out["workload_socket"] = rel(str(workload["socket"]))
    if "trust_domain" in workload:
        out["workload_trust_domain"] = str(workload["trust_domain"])
    if "svid_ttl" in workload:
        out["workload_svid_ttl"] = _duration(workload["svid_ttl"], "workload_api.svid_ttl")
    tls = server.get("tls") or {}
    if tls:
        if not isinstance(tls, dict) or "cert_file" not in tls or "key_file" not in tls:
            raise InvalidParameterError("config `server.tls` needs `cert_file` and `key_file`")
        out["tls_cert_file"] = rel(str(tls["cert_file"]))
        out["tls_key_file"] = rel(str(tls["key_file"]))
    enforcement = raw.get("enforcement") or {}
    tiers = enforcement.get("risk_tiers") or {}
    for tier, mode in tiers.items():
        if mode not in ("enforce", "monitor"):
            raise InvalidParameterError(
                f"config `enforcement.risk_tiers.{tier}` must be enforce or monitor"
            )
    if tiers:
        out["tier_modes"] = {str(k): str(v) for k, v in tiers.items()}
    out.update(_lifecycle(raw, rel))
    out.update(_governance_yaml(raw, rel))
    if raw.get("approvals") is not None:
        out["approvals"] = _approvals(_section(raw, "approvals"))
    if raw.get("behaviour") is not None:
        out["behaviour"] = _behaviour(_section(raw, "behaviour"))
    if raw.get("webhooks") is not None:
        out.update(_webhooks(_section(raw, "webhooks"), rel))
    if raw.get("log") is not None:
        out.update(_log(_section(raw, "log")))
    out.update(_observability_yaml(raw))
    return replace(settings, **out)


def _limits_yaml(server: dict[str, Any], counters: dict[str, Any]) -> dict[str, Any]:
    """``server.{header,body,keep_alive}_timeout``, ``server.max_connections`` (ADR 0095) and
    ``counters: {url, timeout, prefix}`` (ADR 0094)."""
    out: dict[str, Any] = {}
    for key in ("header_timeout", "body_timeout", "keep_alive_timeout"):
        if key in server:
            out[key] = _duration(server[key], f"server.{key}")
            if out[key] <= 0:
                raise InvalidParameterError(f"config `server.{key}` must be positive")
    if "max_connections" in server:
        out["max_connections"] = _int(server["max_connections"], "server.max_connections")
        if out["max_connections"] < 1:
            raise InvalidParameterError("config `server.max_connections` must be at least 1")
    unknown = sorted(set(counters) - {"url", "timeout", "prefix"})
    if unknown:
        raise InvalidParameterError(f"unknown config key `counters.{unknown[0]}`")
    if counters.get("url"):
        url = str(counters["url"])
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise InvalidParameterError("config `counters.url` must be a redis:// URL")
        out["counters_url"] = url
    if "timeout" in counters:
        out["counters_timeout"] = _duration(counters["timeout"], "counters.timeout")
    if "prefix" in counters:
        prefix = str(counters["prefix"])
        if not prefix or len(prefix) > 100 or any(c.isspace() for c in prefix):
            raise InvalidParameterError("config `counters.prefix` must be a short word")
        out["counters_prefix"] = prefix
    return out


LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("auto", "json", "text")


def _log(section: dict[str, Any]) -> dict[str, Any]:
    """``log:`` — ``level``, ``events`` (the level of per-event lines) and ``format``."""
    out: dict[str, Any] = {}
    for key, attr, allowed in (
        ("level", "log_level", LOG_LEVELS),
        ("events", "log_events_level", LOG_LEVELS),
        ("format", "log_format", LOG_FORMATS),
    ):
        if key in section:
            value = str(section[key]).lower()
            if value not in allowed:
                choices = ", ".join(allowed)
                raise InvalidParameterError(f"config `log.{key}` must be one of {choices}")
            out[attr] = value
    unknown = sorted(set(section) - {"level", "events", "format"})
    if unknown:
        raise InvalidParameterError(f"config `log.{unknown[0]}` is not a known key")
    return out


def _governance_yaml(raw: dict[str, Any], rel: Any) -> dict[str, Any]:
    """``governance:`` and ``audit:`` sections (see docs/governance.md)."""
    out: dict[str, Any] = {}
    gov = raw.get("governance") or {}
    for key, attr in (
        ("orphan_grace", "orphan_grace"),
        ("unused_after", "unused_after"),
        ("flag_grace", "flag_grace"),
        ("interval", "governance_interval"),
    ):
        if key in gov:
            out[attr] = _duration(gov[key], f"governance.{key}")
    cert = gov.get("certification") or {}
    if "window" in cert:
        out["certification_window"] = _duration(cert["window"], "governance.certification.window")
    if "on_timeout" in cert:
        if cert["on_timeout"] not in ("reduce", "suspend"):
            raise InvalidParameterError(
                "config `governance.certification.on_timeout` must be reduce or suspend"
            )
        out["certification_on_timeout"] = str(cert["on_timeout"])
    audit = raw.get("audit") or {}
    if "checkpoint_interval" in audit:
        out["checkpoint_interval"] = _duration(
            audit["checkpoint_interval"], "audit.checkpoint_interval"
        )
    if "export_interval" in audit:
        out["export_interval"] = _duration(audit["export_interval"], "audit.export_interval")
    if "durability" in audit:
        out["audit_durability"] = _durability(audit["durability"], "audit.durability")
    if "max_wait" in audit:
        out["audit_max_wait"] = _duration(audit["max_wait"], "audit.max_wait")
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


def _durability(value: Any, key: str) -> str:
    text = str(value).lower()
    if text not in ("durable", "async"):
        raise InvalidParameterError(f"`{key}` must be durable or async")
    return text


def _strings(value: Any, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise InvalidParameterError(f"config `{key}` must be a list of strings")
    return tuple(value)


def _levels(value: Any, key: str) -> tuple[str, ...]:
    try:
        return tuple(parse_level(v) for v in _strings(value, key))
    except ValueError as exc:
        raise InvalidParameterError(f"config `{key}`: {exc}") from None


def _int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidParameterError(f"config `{key}` must be a non-negative integer")
    return value


_APPROVAL_DURATIONS = ("grant_ttl", "escalate_after", "deny_cooldown", "sweep_interval")
_APPROVAL_KEYS = {
    *_APPROVAL_DURATIONS,
    "max_pending_per_agent",
    "requests_per_hour",
    "separation_of_duties",
    "escalation",
    "groups",
}


def _approvals(raw: dict[str, Any]) -> ApprovalSettings:
    unknown = set(raw) - _APPROVAL_KEYS
    if unknown:
        raise InvalidParameterError(f"unknown config key `approvals.{sorted(unknown)[0]}`")
    out: dict[str, Any] = {}
    for key in _APPROVAL_DURATIONS:
        if key in raw:
            out[key] = _duration(raw[key], f"approvals.{key}")
    for key in ("max_pending_per_agent", "requests_per_hour"):
        if key in raw:
            out[key] = _int(raw[key], f"approvals.{key}")
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
        str(name): frozenset(_strings(members, f"approvals.groups.{name}"))
        for name, members in groups.items()
    }
    return ApprovalSettings(**out)


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


def _behaviour(raw: dict[str, Any]) -> BehaviourSettings:
    unknown = set(raw) - _BEHAVIOUR_KEYS
    if unknown:
        raise InvalidParameterError(f"unknown config key `behaviour.{sorted(unknown)[0]}`")
    defaults = BehaviourSettings()
    out: dict[str, Any] = {}
    for key in _BEHAVIOUR_DURATIONS:
        if key in raw:
            out[key] = _duration(raw[key], f"behaviour.{key}")
            if out[key] <= 0:
                raise InvalidParameterError(f"config `behaviour.{key}` must be positive")
    for key in _BEHAVIOUR_INTS:
        if key in raw:
            out[key] = _int(raw[key], f"behaviour.{key}")
    if "enabled" in raw:
        out["enabled"] = bool(raw["enabled"])
    if "rate_factor" in raw:
        factor = raw["rate_factor"]
        if isinstance(factor, bool) or not isinstance(factor, int | float) or factor <= 0:
            raise InvalidParameterError("config `behaviour.rate_factor` must be a positive number")
        out["rate_factor"] = float(factor)
    if "high_risk_actions" in raw:
        out["high_risk_actions"] = frozenset(
            _strings(raw["high_risk_actions"], "behaviour.high_risk_actions")
        )
    intents = raw.get("intents") or {}
    if not isinstance(intents, dict):
        raise InvalidParameterError("config `behaviour.intents` maps categories to intents")
    out["intents"] = {
        str(c): frozenset(_strings(v, f"behaviour.intents.{c}")) for c, v in intents.items()
    }
    thresholds = dict(defaults.thresholds)
    for tier, spec in (raw.get("thresholds") or {}).items():
        if not isinstance(spec, dict) or set(spec) - {"notify", "step_up", "suspend"}:
            raise InvalidParameterError(
                f"config `behaviour.thresholds.{tier}` must be {{notify, step_up, suspend}}"
            )
        base = thresholds.get(str(tier)) or Thresholds()
        values = {k: _int(v, f"behaviour.thresholds.{tier}.{k}") for k, v in spec.items()}
        thresholds[str(tier)] = replace(base, **values)
    out["thresholds"] = thresholds
    return BehaviourSettings(**out)


def _webhooks(raw: dict[str, Any], rel: Any) -> dict[str, Any]:
    unknown = set(raw) - {"delivery", "endpoints"}
    if unknown:
        raise InvalidParameterError(f"unknown config key `webhooks.{sorted(unknown)[0]}`")
    out: dict[str, Any] = {}
    delivery = raw.get("delivery") or {}
    if "max_attempts" in delivery:
        out["webhook_max_attempts"] = max(1, _int(delivery["max_attempts"], "webhooks.delivery"))
    if "base_delay" in delivery:
        out["webhook_base_delay"] = _duration(delivery["base_delay"], "webhooks.base_delay")
    if "timeout" in delivery:
        out["webhook_timeout"] = _duration(delivery["timeout"], "webhooks.timeout")
    endpoints = []
    for i, spec in enumerate(raw.get("endpoints") or []):
        where = f"webhooks.endpoints[{i}]"
        if not isinstance(spec, dict) or not isinstance(spec.get("url"), str):
            raise InvalidParameterError(f"config `{where}` needs a `url`")
        url = spec["url"]
        if not url.startswith(("https://", "http://")):
            raise InvalidParameterError(f"config `{where}.url` must be an http(s) url")
        secret = _webhook_secret(spec, where, rel)
        try:
            key = decode_secret(secret)
        except ValueError as exc:
            raise InvalidParameterError(f"config `{where}`: {exc}") from None
        recipients = frozenset(_strings(spec.get("for", ["*"]), f"{where}.for"))
        events = spec.get("events")
        endpoints.append(
            WebhookEndpoint(
                url=url,
                key=key,
                recipients=recipients,
                events=frozenset(_strings(events, f"{where}.events")) if events else None,
            )
        )
    out["webhooks"] = tuple(endpoints)
    return out


def _webhook_secret(spec: dict[str, Any], where: str, rel: Any) -> str:
    """The secret from ``secret_file``, ``secret_env`` or (discouraged) inline ``secret``."""
    if spec.get("secret_file"):
        path = rel(str(spec["secret_file"]))
        try:
            return str(path.read_text().strip())
        except OSError as exc:
            raise InvalidParameterError(
                f"config `{where}.secret_file`: cannot read `{path}`: {exc.strerror}"
            ) from None
    if spec.get("secret_env"):
        value = os.environ.get(str(spec["secret_env"]), "")
        if not value:
            raise InvalidParameterError(
                f"config `{where}.secret_env`: environment variable `{spec['secret_env']}` is empty"
            )
        return value
    if spec.get("secret"):
        return str(spec["secret"])
    raise InvalidParameterError(f"config `{where}` needs `secret_file`, `secret_env` or `secret`")


def _oidc_issuer(item: Any, key: str, rel: Any) -> OIDCIssuer:
    if not isinstance(item, dict):
        raise InvalidParameterError(f"config `{key}` must be a mapping")
    known = {
        "issuer", "audience", "kind", "jwks_uri", "ca_file", "selectors", "jwks_refresh",
        "jwks_ttl", "min_refresh_interval", "timeout",
    }  # fmt: skip
    unknown = sorted(set(item) - known)
    if unknown:
        raise InvalidParameterError(f"config `{key}.{unknown[0]}` is not a known key")
    selectors = item.get("selectors") or {}
    if not isinstance(selectors, dict):
        raise InvalidParameterError(f"config `{key}.selectors` must map claims to selectors")
    options: dict[str, Any] = {}
    for name in ("jwks_refresh", "jwks_ttl", "min_refresh_interval", "timeout"):
        if name in item:
            options[name] = _duration(item[name], f"{key}.{name}")
    return OIDCIssuer(
        issuer=str(item.get("issuer", "")),
        audience=str(item.get("audience", "")),
        kind=str(item.get("kind", "oidc")),
        jwks_uri=str(item["jwks_uri"]) if item.get("jwks_uri") else None,
        ca_file=rel(str(item["ca_file"])) if item.get("ca_file") else None,
        selectors={str(k): str(v) for k, v in selectors.items()},
        **options,
    )


_TIERS = ("low", "medium", "high", "critical")


def _section(raw: dict[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name) or {}
    if not isinstance(value, dict):
        raise InvalidParameterError(f"config `{name}` must be a mapping")
    return value


def _lifecycle(raw: dict[str, Any], rel: Any) -> dict[str, Any]:
    """The ``delegation``, ``dpop``, ``keys``, ``replication`` and ``leases`` sections."""
    out: dict[str, Any] = {}
    delegation = _section(raw, "delegation")
    if "max_depth" in delegation:
        depth = delegation["max_depth"]
        if isinstance(depth, bool) or not isinstance(depth, int) or not 0 <= depth <= 16:
            raise InvalidParameterError("config `delegation.max_depth` must be 0..16")
        out["max_delegation_depth"] = depth
    dpop = _section(raw, "dpop")
    if "required_risk_tiers" in dpop:
        tiers = dpop["required_risk_tiers"] or []
        if not isinstance(tiers, list) or any(t not in _TIERS for t in tiers):
            raise InvalidParameterError(
                "config `dpop.required_risk_tiers` must list low, medium, high or critical"
            )
        out["dpop_required_tiers"] = tuple(tiers)
    if "max_age" in dpop:
        out["dpop_max_age"] = _duration(dpop["max_age"], "dpop.max_age")
    keys = _section(raw, "keys")
    if "kek_file" in keys:
        out["kek_file"] = rel(str(keys["kek_file"]))
    if "retire_grace" in keys:
        out["key_retire_grace"] = _duration(keys["retire_grace"], "keys.retire_grace")
    replication = _section(raw, "replication")
    if "advertise_url" in replication:
        out["advertise_url"] = str(replication["advertise_url"])
    for key, attr in (
        ("resync_interval", "resync_interval"),
        ("heartbeat_interval", "heartbeat_interval"),
        ("housekeeping_interval", "housekeeping_interval"),
        ("max_staleness", "replication_max_staleness"),
    ):
        if key in replication:
            out[attr] = _duration(replication[key], f"replication.{key}")
    leases = _section(raw, "leases")
    if "reaper_interval" in leases:
        out["lease_reaper_interval"] = _duration(
            leases["reaper_interval"], "leases.reaper_interval"
        )
    for key, attr in (("postgres", "lease_postgres"), ("services", "lease_services")):
        entries = leases.get(key) or {}
        if not isinstance(entries, dict) or not all(isinstance(v, dict) for v in entries.values()):
            raise InvalidParameterError(f"config `leases.{key}` must map names to mappings")
        parsed: dict[str, dict[str, Any]] = {}
        for name, entry in entries.items():
            parsed[str(name)] = dict(entry)
            if "max_ttl" in entry:
                where = f"leases.{key}.{name}.max_ttl"
                parsed[str(name)]["max_ttl"] = _duration(entry["max_ttl"], where)
        out[attr] = parsed
    return out


def _observability_yaml(raw: dict[str, Any]) -> dict[str, Any]:
    """``telemetry:`` (OTLP traces) and ``signals:`` (SSF delivery) sections."""
    out: dict[str, Any] = {}
    tel = _section(raw, "telemetry") if raw.get("telemetry") is not None else {}
    unknown = set(tel) - {"otlp_endpoint", "headers", "service_name", "sample_ratio"}
    if unknown:
        raise InvalidParameterError(f"unknown config key `telemetry.{sorted(unknown)[0]}`")
    if tel.get("otlp_endpoint"):
        endpoint = str(tel["otlp_endpoint"])
        if not endpoint.startswith(("http://", "https://")):
            raise InvalidParameterError("config `telemetry.otlp_endpoint` must be an http(s) URL")
        out["otlp_endpoint"] = endpoint
    if tel.get("headers") is not None:
        if not isinstance(tel["headers"], dict):
            raise InvalidParameterError("config `telemetry.headers` must be a mapping")
        out["otlp_headers"] = tuple((str(k), str(v)) for k, v in tel["headers"].items())
    if "service_name" in tel:
        out["otlp_service_name"] = str(tel["service_name"])
    if "sample_ratio" in tel:
        try:
            ratio = float(tel["sample_ratio"])
        except (TypeError, ValueError):
            ratio = -1.0
        if not 0.0 <= ratio <= 1.0:
            raise InvalidParameterError("config `telemetry.sample_ratio` must be between 0 and 1")
        out["otlp_sample_ratio"] = ratio
    sig = _section(raw, "signals") if raw.get("signals") is not None else {}
    unknown = set(sig) - {"interval", "max_backoff", "push_timeout"}
    if unknown:
        raise InvalidParameterError(f"unknown config key `signals.{sorted(unknown)[0]}`")
    for key, attr in (
        ("interval", "signals_interval"),
        ("max_backoff", "signals_max_backoff"),
        ("push_timeout", "signals_push_timeout"),
    ):
        if key in sig:
            out[attr] = _duration(sig[key], f"signals.{key}")
    return out
