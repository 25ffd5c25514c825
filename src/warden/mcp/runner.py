"""Wiring for ``warden mcp-proxy``: the decision point (remote or embedded) and the transports."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from warden.sdk.client import AsyncWardenClient

from .config import ProxyConfig
from .proxy import Gate


@dataclass
class Backend:
    """Where decisions come from, and (for HTTP) how credentials are checked."""

    gate: Gate
    pdp: Any
    warden: Any = None  # the in-process Warden when embedded


@asynccontextmanager
async def open_backend(config: ProxyConfig) -> AsyncIterator[Backend]:
    if config.warden_url is not None:
        client = AsyncWardenClient(config.warden_url, api_key=config.api_key)
        try:
            yield Backend(Gate(client), client)
        finally:
            await client.aclose()
        return
    from warden.config import Settings
    from warden.sdk.embedded import EmbeddedPDP
    from warden.service.container import Warden

    assert config.embedded_data_dir is not None
    settings = Settings(
        data_dir=config.embedded_data_dir,
        policies_dir=config.embedded_policies,
        issuer=config.embedded_issuer,
        serves_api=False,  # follows the server's change feed; not a replica anyone can query
    )
    w = Warden(settings)
    w.start()
    try:
        pdp = EmbeddedPDP(w)
        yield Backend(Gate(pdp), pdp, w)
    finally:
        w.close()
