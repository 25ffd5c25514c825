"""The server log (docs/console.md), traces and Shared Signals (docs/observability.md).

YAML ``log: {level, events, format}`` (env ``WARDEN_LOG_LEVEL``), ``telemetry: {otlp_endpoint,
headers, service_name, sample_ratio}`` (env ``WARDEN_OTLP_ENDPOINT``) and ``signals: {interval,
max_backoff, push_timeout}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from warden.config._values import duration, section
from warden.errors import InvalidParameterError


@dataclass(frozen=True, slots=True)
class LogSettings:
    level: str
    events_level: str  # the level of the one line per decision, approval, kill, policy change
    format: str  # auto (JSON when stderr is not a TTY) | json | text


@dataclass(frozen=True, slots=True)
class TelemetrySettings:
    otlp_endpoint: str | None  # OTLP/HTTP collector base URL; None: tracing off
    headers: tuple[tuple[str, str], ...]
    service_name: str
    sample_ratio: float


@dataclass(frozen=True, slots=True)
class SignalsSettings:
    interval: float  # how often the outbox is filled and pushed
    max_backoff: float  # push retries back off up to this
    push_timeout: float


LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("auto", "json", "text")


def log_yaml(section: dict[str, Any]) -> dict[str, Any]:
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


def observability_yaml(raw: dict[str, Any]) -> dict[str, Any]:
    """``telemetry:`` (OTLP traces) and ``signals:`` (SSF delivery) sections."""
    out: dict[str, Any] = {}
    tel = section(raw, "telemetry") if raw.get("telemetry") is not None else {}
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
    sig = section(raw, "signals") if raw.get("signals") is not None else {}
    unknown = set(sig) - {"interval", "max_backoff", "push_timeout"}
    if unknown:
        raise InvalidParameterError(f"unknown config key `signals.{sorted(unknown)[0]}`")
    for key, attr in (
        ("interval", "signals_interval"),
        ("max_backoff", "signals_max_backoff"),
        ("push_timeout", "signals_push_timeout"),
    ):
        if key in sig:
            out[attr] = duration(sig[key], f"signals.{key}")
    return out
