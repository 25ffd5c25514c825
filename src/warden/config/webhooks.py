"""Webhooks that tell people about approvals and findings, signed (docs/approvals.md).

YAML ``webhooks: {delivery: {max_attempts, base_delay, timeout}, endpoints: [{url, secret_file |
secret_env | secret, for, events}]}``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from warden.config._values import Rel, duration, integer, strings
from warden.errors import InvalidParameterError
from warden.webhooks import WebhookEndpoint, decode_secret


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    endpoints: tuple[WebhookEndpoint, ...]
    max_attempts: int
    base_delay: float
    timeout: float


def webhooks_yaml(raw: dict[str, Any], rel: Rel) -> dict[str, Any]:
    unknown = set(raw) - {"delivery", "endpoints"}
    if unknown:
        raise InvalidParameterError(f"unknown config key `webhooks.{sorted(unknown)[0]}`")
    out: dict[str, Any] = {}
    delivery = raw.get("delivery") or {}
    if "max_attempts" in delivery:
        out["webhook_max_attempts"] = max(1, integer(delivery["max_attempts"], "webhooks.delivery"))
    if "base_delay" in delivery:
        out["webhook_base_delay"] = duration(delivery["base_delay"], "webhooks.base_delay")
    if "timeout" in delivery:
        out["webhook_timeout"] = duration(delivery["timeout"], "webhooks.timeout")
    endpoints = []
    for i, spec in enumerate(raw.get("endpoints") or []):
        where = f"webhooks.endpoints[{i}]"
        if not isinstance(spec, dict) or not isinstance(spec.get("url"), str):
            raise InvalidParameterError(f"config `{where}` needs a `url`")
        url = spec["url"]
        if not url.startswith(("https://", "http://")):
            raise InvalidParameterError(f"config `{where}.url` must be an http(s) url")
        secret = _secret(spec, where, rel)
        try:
            key = decode_secret(secret)
        except ValueError as exc:
            raise InvalidParameterError(f"config `{where}`: {exc}") from None
        recipients = frozenset(strings(spec.get("for", ["*"]), f"{where}.for"))
        events = spec.get("events")
        endpoints.append(
            WebhookEndpoint(
                url=url,
                key=key,
                recipients=recipients,
                events=frozenset(strings(events, f"{where}.events")) if events else None,
            )
        )
    out["webhooks"] = tuple(endpoints)
    return out


def _secret(spec: dict[str, Any], where: str, rel: Rel) -> str:
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
