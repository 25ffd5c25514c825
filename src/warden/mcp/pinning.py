"""Reading upstream tool definitions for ``warden mcp pin``: connect, initialize, list, close."""

from __future__ import annotations

import asyncio
from typing import Any

import warden

from .config import ProxyConfig
from .proxy import LATEST_HANDSHAKE, MAX_PAGES
from .upstream import connect


async def upstream_tools(config: ProxyConfig, only: str | None = None) -> dict[str, list[Any]]:
    """``{upstream name: [tool definitions as the server sends them]}``."""
    chosen = [u for u in config.upstreams if only is None or u.name == only]
    if not chosen:
        from warden.errors import InvalidParameterError

        raise InvalidParameterError(f"the proxy config has no upstream `{only}`")

    async def one(upstream_config: Any) -> list[Any]:
        upstream = connect(upstream_config)
        try:
            await upstream.initialize(
                {
                    "protocolVersion": LATEST_HANDSHAKE,
                    "capabilities": {},
                    "clientInfo": {"name": "warden-mcp-pin", "version": warden.__version__},
                }
            )
            tools: list[Any] = []
            cursor: str | None = None
            for _ in range(MAX_PAGES):
                page = await upstream.request(
                    "tools/list", {"cursor": cursor} if cursor else {}, timeout=config.call_timeout
                )
                tools.extend(t for t in page.get("tools") or [] if isinstance(t, dict))
                cursor = page.get("nextCursor") or None
                if not isinstance(cursor, str):
                    break
            return tools
        finally:
            await upstream.close()

    results = await asyncio.gather(*(one(u) for u in chosen))
    return {u.name: tools for u, tools in zip(chosen, results, strict=True)}
