"""``warden mcp-proxy``: authorize every MCP message between an agent and its MCP servers."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer

from warden.cli.output import fail


def mcp_proxy(
    config: Annotated[
        Path, typer.Option("--config", help="Proxy config (upstreams, Warden URL or embedded).")
    ],
    http: Annotated[
        bool, typer.Option("--http", help="Serve Streamable HTTP instead of stdio.")
    ] = False,
    host: Annotated[str, typer.Option("--host", help="Address to bind (with --http).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option("--port", help="Port to listen on (with --http).")] = 8931,
    credential_file: Annotated[
        Path | None,
        typer.Option(
            "--credential-file",
            help="stdio: read the task credential from this file on every decision "
            "(default: $WARDEN_TASK_CREDENTIAL).",
        ),
    ] = None,
) -> None:
    """Run the MCP proxy (stdio by default; --http for Streamable HTTP)."""
    from warden.errors import WardenError
    from warden.mcp.config import load_proxy_config

    if not config.is_file():
        fail(f"config file `{config}` does not exist")
    try:
        cfg = load_proxy_config(config)
    except WardenError as exc:
        fail(f"{exc.code}: {exc.message}")
    # stdout carries the protocol over stdio: logs go to stderr
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(levelname)-8s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per decision is noise
    try:
        if http:
            from warden.mcp.http import run_http

            _run(run_http(cfg, host, port))
        else:
            _run(_stdio(cfg, credential_file))
    except KeyboardInterrupt:
        pass
    except WardenError as exc:
        fail(f"{exc.code}: {exc.message}")


def _run(main: Coroutine[Any, Any, None]) -> None:
    """uvloop when it is installed (it comes with uvicorn[standard]): a faster hop per message."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)


async def _stdio(cfg: object, credential_file: Path | None) -> None:
    from warden.mcp.config import ProxyConfig
    from warden.mcp.runner import open_backend
    from warden.mcp.stdio import credential_source, serve_stdio

    assert isinstance(cfg, ProxyConfig)
    async with open_backend(cfg) as backend:
        await serve_stdio(cfg, backend.gate, credential_source(credential_file))
