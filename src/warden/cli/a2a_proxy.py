"""``warden a2a-proxy``: authorize every A2A request between agents (see ``warden.a2a``)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from warden.cli.output import fail


def a2a_proxy(
    config: Annotated[Path, typer.Option("--config", help="Proxy config (Warden URL, target).")],
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8940,
) -> None:
    """Run the A2A proxy in front of one A2A server."""
    from warden.a2a.runner import run_a2a_proxy
    from warden.errors import WardenError

    if not config.is_file():
        fail(f"config file `{config}` does not exist")
    try:
        asyncio.run(run_a2a_proxy(config, host, port))
    except KeyboardInterrupt:
        pass
    except WardenError as exc:
        fail(f"{exc.code}: {exc.message}")
