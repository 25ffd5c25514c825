"""``warden demo``: the end-to-end story against a real Warden server process.

The demo starts ``warden serve --dev`` on a free port with a throw-away data folder
(``demo.server``), then walks through the life of one task over HTTP (``demo.story``), printing
what it sent, what came back and whether that is what Warden promises. It exits non-zero when
any step misbehaves, and always stops the server (unless ``--keep``).
"""

from __future__ import annotations

from typing import Annotated

import httpx
import typer
from rich.text import Text

from warden.cli.client import admin_token_path
from warden.cli.output import console, esc
from warden.demo.server import demo_server
from warden.demo.story import Demo, all_steps, run_steps


def demo(
    keep: Annotated[
        bool, typer.Option("--keep", help="Leave the server running afterwards to explore.")
    ] = False,
) -> None:
    """Run the end-to-end story against a real Warden server it starts itself."""
    console.print(Text("Warden demo: one agent, one task, every control", style="bold"))
    with demo_server(keep) as server:
        console.print(
            f"starting [bold]warden serve --dev[/] on {esc(server.url)} "
            f"(data in {esc(server.data_dir)})"
        )
        try:
            server.wait_ready()
        except RuntimeError as exc:
            console.print(Text(f"✘ {exc}", style="bold red"))
            raise typer.Exit(1) from None
        admin_token = admin_token_path(server.data_dir).read_text().strip()
        with httpx.Client(base_url=server.url, timeout=15.0) as http:
            ok = run_steps(Demo(server.url, server.data_dir, http, admin_token), all_steps())
        if not ok:
            tail = server.log_tail(15)
            if tail:
                console.print(Text("server log (last lines):", style="bold"))
                console.print(Text(tail, style="dim"))
        if keep and server.process.poll() is None:
            console.print()
            console.print(
                f"the server keeps running at [bold]{esc(server.url)}[/] (pid {server.process.pid})"
            )
            console.print(
                f"  export WARDEN_URL={esc(server.url)} WARDEN_DATA_DIR={esc(server.data_dir)}"
            )
            console.print(
                f"  stop it with: kill -INT {server.process.pid}; rm -rf {esc(server.data_dir)}"
            )
    if not ok:
        raise typer.Exit(1)
