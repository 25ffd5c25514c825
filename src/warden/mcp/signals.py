"""The HTTP proxy as a Shared Signals receiver: poll Warden's SSF stream, refuse what it revokes.

With ``signals`` in the proxy config, the proxy polls its stream (RFC 8936) every ``interval``
and feeds each verified ``session-revoked`` to its credential check, so a task that ended is
refused at the proxy's door at once instead of when its credential expires::

    signals:
      poll_url: http://warden:8080/ssf/poll/stream_…   # the stream's delivery.endpoint_url
      poll_token_env: WARDEN_SSF_POLL_TOKEN           # or poll_token (discouraged)
      audience: mcp-proxy                             # the stream's aud
      interval: 2
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field
from typing import Any

import httpx

from warden.errors import InvalidParameterError
from warden.sdk.signals import SignalReceiver

log = logging.getLogger("warden.mcp.signals")


@dataclass(frozen=True)
class SignalsConfig:
    poll_url: str
    poll_token: str = field(repr=False)
    audience: str | None = None
    interval: float = 2.0


def parse_signals(raw: Any) -> SignalsConfig | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InvalidParameterError("config: `signals` must be a mapping")
    unknown = set(raw) - {"poll_url", "poll_token", "poll_token_env", "audience", "interval"}
    if unknown:
        raise InvalidParameterError(f"config: unknown key `signals.{sorted(unknown)[0]}`")
    url = raw.get("poll_url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise InvalidParameterError("config: `signals.poll_url` must be the stream's poll URL")
    token = raw.get("poll_token")
    if raw.get("poll_token_env"):
        token = os.environ.get(str(raw["poll_token_env"]))
    if not isinstance(token, str) or not token:
        raise InvalidParameterError("config: `signals` needs `poll_token_env` (or `poll_token`)")
    try:
        interval = float(raw.get("interval", 2.0))
    except (TypeError, ValueError):
        interval = 0.0
    if interval <= 0:
        raise InvalidParameterError("config: `signals.interval` must be a positive number")
    audience = raw.get("audience")
    return SignalsConfig(url, token, str(audience) if audience else None, interval)


class SignalFollower:
    """Polls one stream; ``once()`` is one fetch-and-acknowledge pass."""

    def __init__(
        self, config: SignalsConfig, receiver: SignalReceiver, http: httpx.Client | None = None
    ) -> None:
        self.config = config
        self.receiver = receiver
        self._http = http

    def once(self) -> int:
        return self.receiver.poll(self.config.poll_url, self.config.poll_token, http=self._http)

    async def run(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.once)
            except Exception as exc:  # Warden away: keep the proxy up, try again next round
                log.warning("polling Shared Signals failed: %s", str(exc)[:200])
            await asyncio.sleep(self.config.interval)
