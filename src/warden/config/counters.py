"""Counters shared by every replica for budgets, rate windows and deny streaks (ADR 0094).

YAML ``counters: {url, timeout, prefix}``; env ``WARDEN_COUNTERS_URL``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from warden.config._values import duration
from warden.errors import InvalidParameterError


@dataclass(frozen=True, slots=True)
class CountersSettings:
    url: str | None  # redis://… ; None keeps the counters in this process
    timeout: float
    prefix: str


def counters_yaml(counters: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    unknown = sorted(set(counters) - {"url", "timeout", "prefix"})
    if unknown:
        raise InvalidParameterError(f"unknown config key `counters.{unknown[0]}`")
    if counters.get("url"):
        url = str(counters["url"])
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise InvalidParameterError("config `counters.url` must be a redis:// URL")
        out["counters_url"] = url
    if "timeout" in counters:
        out["counters_timeout"] = duration(counters["timeout"], "counters.timeout")
    if "prefix" in counters:
        prefix = str(counters["prefix"])
        if not prefix or len(prefix) > 100 or any(c.isspace() for c in prefix):
            raise InvalidParameterError("config `counters.prefix` must be a short word")
        out["counters_prefix"] = prefix
    return out
