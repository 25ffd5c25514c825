"""The P4 server process: Warden's app under uvicorn (1 worker), plus ``GET /bench/hello``.

Run by ``bench.p4_http`` as ``python -m bench._server ROOT READY_FILE CPU``. It builds the same
agent world as the in-process benchmarks (SQLite in ROOT, the agent policies, one agent with a
started task), adds a trivial hello route to the same FastAPI app object (so both endpoints go
through the same uvicorn + FastAPI + middleware stack in the same process), pins itself to CPU,
listens on a loopback port chosen by the kernel, and writes ``{"port", "token", "spiffe_id"}``
to READY_FILE once uvicorn is accepting connections. SIGTERM stops it gracefully (the app's
lifespan closes Warden). The uvicorn configuration matches ``warden serve``.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path
from typing import Any


def main(argv: list[str]) -> None:
    root, ready, cpu = Path(argv[0]), Path(argv[1]), int(argv[2])
    if cpu >= 0:
        os.sched_setaffinity(0, {cpu})

    import uvicorn
    from starlette.responses import Response

    from bench._common import make_agent_world
    from warden.api.app import create_app

    world = make_agent_world(root, start=False)  # the app's lifespan starts the loops
    app = create_app(world.warden)

    @app.get("/bench/hello")
    async def hello() -> Response:
        return Response(b'{"hello":"world"}', media_type="application/json")

    position = _same_scan_depth(app)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    info = {
        "port": port,
        "token": world.token,
        "spiffe_id": world.agent.spiffe_id,
        "hello_position": position,
    }

    class Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                tmp = ready.with_suffix(".tmp")
                tmp.write_text(json.dumps(info))
                tmp.rename(ready)

    config = uvicorn.Config(app, log_level="warning", access_log=False, workers=1)
    Server(config).run(sockets=[sock])


def _same_scan_depth(app: Any) -> str:
    """Move the (last added) hello route to just before the top-level entry that serves
    ``POST /access/v1/evaluation``, so both requests pay the same route scan (routing walks the
    list in order; appended at the end, hello would pay for every route)."""
    from starlette.routing import Match

    routes = app.router.routes
    scope = {
        "type": "http",
        "path": "/access/v1/evaluation",
        "method": "POST",
        "root_path": "",
        "headers": [],
        "query_string": b"",
    }
    for index, route in enumerate(routes[:-1]):
        try:
            match, _ = route.matches(dict(scope))
        except Exception:  # noqa: S112 - an entry we cannot probe: keep looking
            continue
        if match is Match.FULL:
            routes.insert(index, routes.pop())
            return f"{index} of {len(routes)} top-level routes (where the evaluation is served)"
    return f"{len(routes) - 1} of {len(routes)} top-level routes (last; evaluation route not found)"


if __name__ == "__main__":
    main(sys.argv[1:])
