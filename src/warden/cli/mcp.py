"""``warden mcp pin|pins|unpin``: approve the tool definitions of the servers behind a proxy.

``warden mcp pin --config proxy.yaml`` connects to each upstream of the proxy config, reads its
tools and pins their definition digests (name, description, input schema, annotations) in
Warden's database — through the server (``POST /v1/mcp/pins``, operator token) or, for an
embedded proxy config, straight into its data folder. Run it again to re-approve a tool whose
definition changed (the diff is printed and audited).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from warden.cli.client import (
    DEFAULT_DATA_DIR,
    DEFAULT_URL,
    DataDirOption,
    JsonOption,
    UrlOption,
    WardenClient,
    seg,
)
from warden.cli.output import (
    col,
    fail,
    show_table,
)

app = typer.Typer(help="MCP tool pinning (the proxy itself is `warden mcp-proxy`).")

ConfigOption = Annotated[
    Path, typer.Option("--config", help="The proxy config whose upstreams to read.")
]

PIN_COLUMNS = (col("server"), col("tool"), col("status"), col("digest"))


def _load(config: Path) -> Any:
    from warden.errors import WardenError
    from warden.mcp.config import load_proxy_config

    if not config.is_file():
        fail(f"config file `{config}` does not exist")
    try:
        return load_proxy_config(config)
    except WardenError as exc:
        fail(f"{exc.code}: {exc.message}")


def _embedded(cfg: Any) -> Any:
    from warden.bootstrap import Warden
    from warden.mcp.runner import embedded_settings

    return Warden(embedded_settings(cfg))


@app.command("pin")
def pin(
    config: ConfigOption,
    upstream: Annotated[
        str | None, typer.Option("--upstream", help="Only this upstream (default: all).")
    ] = None,
    tool: Annotated[
        list[str] | None, typer.Option("--tool", help="Only these tools (repeatable).")
    ] = None,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonOption = False,
) -> None:
    """Approve the current tool definitions of the proxy's upstream servers."""
    from warden.errors import WardenError
    from warden.mcp.pinning import upstream_tools

    cfg = _load(config)
    try:
        offered = asyncio.run(upstream_tools(cfg, upstream))
    except WardenError as exc:
        fail(f"{exc.code}: {exc.message}")
    except Exception as exc:  # an upstream that cannot be read is reported, not a traceback
        fail(f"cannot read the upstream tools: {exc}")
    results: dict[str, Any] = {}
    if cfg.embedded:
        w = _embedded(cfg)
        try:
            for server, tools in offered.items():
                names = [t for t in tool or [] if any(d.get("name") == t for d in tools)]
                results[server] = w.pins.pin(
                    server, tools, actor="operator:cli", only=names if tool else None
                )
        except WardenError as exc:
            fail(f"{exc.code}: {exc.message}")
        finally:
            w.close()
    else:
        with WardenClient(cfg.warden_url or url, data_dir) as client:
            for server, tools in offered.items():
                body: dict[str, Any] = {"server": server, "tools": tools}
                if tool:
                    body["only"] = [t for t in tool if any(d.get("name") == t for d in tools)]
                results[server] = client.post("/v1/mcp/pins", body)["pinned"]
    if as_json:
        typer.echo(json.dumps(results, indent=2))
        return
    show_table(
        [{"server": server, **item} for server, pinned in results.items() for item in pinned],
        PIN_COLUMNS,
    )


@app.command("pins")
def pins(
    server: Annotated[str | None, typer.Option("--server", help="Only this upstream.")] = None,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    as_json: JsonOption = False,
) -> None:
    """List pinned tools; a changed definition shows as `changed` with its diff."""
    with WardenClient(url, data_dir) as client:
        query = f"?server={seg(server)}" if server else ""
        found = client.get(f"/v1/mcp/pins{query}")["pins"]
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    show_table(found, PIN_COLUMNS)
    for p in found:
        diff = (p.get("observed") or {}).get("diff", [])
        if diff:
            typer.echo(f"{p['server']}  {p['tool']}: changed")
        for change in diff:
            typer.echo(f"    {change['path']}: {change['before']!r} -> {change['after']!r}")


@app.command("unpin")
def unpin(
    server: Annotated[str, typer.Argument(help="The upstream's name.")],
    tool: Annotated[str, typer.Argument(help="The tool's name on that upstream.")],
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Forget a pin (the tool then counts as unpinned)."""
    with WardenClient(url, data_dir) as client:
        client.request("DELETE", f"/v1/mcp/pins/{seg(server)}/{seg(tool)}")
    typer.echo(f"unpinned {server} {tool}")
