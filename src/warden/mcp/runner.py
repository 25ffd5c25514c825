"""Wiring for ``warden mcp-proxy``: the decision point (remote or embedded) and the transports."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from warden.config import Settings, load_settings
from warden.sdk.client import AsyncWardenClient

from .config import ProxyConfig
from .proxy import Gate


@dataclass
class Backend:
    """Where decisions come from, and (for HTTP) how credentials are checked."""

    gate: Gate
    pdp: Any
    warden: Any = None  # the in-process Warden when embedded


def embedded_settings(config: ProxyConfig) -> Settings:
    """The server's full settings (its config file and ``WARDEN_*`` environment, as ``warden
    serve`` reads them) with the proxy's overrides: same database, modes, approvals, tokens."""
    return load_settings(
        config.embedded_config,
        data_dir=config.embedded_data_dir,
        database_url=config.embedded_database_url,
        policies_dir=config.embedded_policies,
        issuer=config.embedded_issuer,
        serves_api=False,  # follows the server's change feed; not a replica anyone can query
    )


@asynccontextmanager
async def open_backend(config: ProxyConfig) -> AsyncIterator[Backend]:
    if config.warden_url is not None:
        client = AsyncWardenClient(config.warden_url, api_key=config.api_key)
        try:
            yield Backend(Gate(client), client)
        finally:
            await client.aclose()
        return
    from warden.bootstrap import Warden
    from warden.embedded import EmbeddedPDP

    w = Warden(embedded_settings(config))
    w.start()
    try:
        pdp = EmbeddedPDP(w)
        yield Backend(Gate(pdp, offload=True), pdp, w)
    finally:
        w.close()
