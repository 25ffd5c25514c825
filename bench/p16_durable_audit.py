"""P16: decisions with durable audit (answer after the commit) vs async (answer first).

The P4 server process (``bench._server``: the app under uvicorn, one worker, pinned to one core)
with ``audit.durability`` durable or async, on SQLite and on PostgreSQL (a database of its own
on the server at ``BENCH_PG_URL``, default the test server, created and dropped here). For each:
throughput with 32 keep-alive connections, and p50/p99 latency with one connection (closed loop:
one request in flight, so the commit wait shows in full). No target: a measurement (issue 11).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson

from bench import _common as c
from bench._loadgen import LoadResult, encode_post_json, run_load
from bench.p4_http import _stop, _wait_ready

REPO = Path(__file__).resolve().parents[1]
PG_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def run() -> None:
    c.print_header("P16 durable vs async audit: HTTP decisions, SQLite and PostgreSQL")
    rounds, duration, warmup = (1, 2.0, 1.0) if c.QUICK else (2, 4.0, 1.5)
    server_cpu, client_cpu = c.cpu_split()
    figures: dict[tuple[str, str], dict[str, float]] = {}
    for backend in ("sqlite", "postgresql"):
        for mode in ("async", "durable"):
            with _database(backend) as url:  # a fresh one each: its keys belong to that server
                if backend == "postgresql" and url is None:
                    print("  PostgreSQL unreachable at BENCH_PG_URL: skipped")
                    break
                got = _one(backend, mode, url, rounds, duration, warmup, server_cpu, client_cpu)
                if got is not None:
                    figures[(backend, mode)] = got
    parts = []
    for backend in ("sqlite", "postgresql"):
        a, d = figures.get((backend, "async")), figures.get((backend, "durable"))
        if a is None or d is None:
            continue
        parts.append(
            f"{backend} rps durable={d['rps']:.0f} async={a['rps']:.0f} "
            f"ratio={d['rps'] / a['rps']:.2f} 1-client p50 durable={d['p50']:.0f}us "
            f"async={a['p50']:.0f}us p99 durable={d['p99']:.0f}us async={a['p99']:.0f}us"
        )
    print("P16 durable audit: " + ("; ".join(parts) or "not measured"))


def _one(
    backend: str,
    mode: str,
    url: str | None,
    rounds: int,
    duration: float,
    warmup: float,
    server_cpu: int,
    client_cpu: int,
) -> dict[str, float] | None:
    env = {**os.environ, "BENCH_AUDIT_DURABILITY": mode, "BENCH_DATABASE_URL": url or ""}
    with c.temp_dir(f"p16-{backend}-{mode}") as root:
        ready = root / "ready.json"
        log = (root / "server.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench._server", str(root), str(ready), str(server_cpu)],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        try:
            info = _wait_ready(proc, ready, root / "server.log", timeout=120)
            if info is None:
                return None
            port = int(info["port"])
            body = orjson.dumps(
                {
                    "subject": {
                        "type": "agent",
                        "id": info["spiffe_id"],
                        "properties": {"token": info["token"]},
                    },
                    "action": {"name": "tools/call"},
                    "resource": {"type": "tool", "id": c.TOOL},
                    "context": c.PEP_CONTEXT,
                }
            )
            request = encode_post_json("/access/v1/evaluation", port, body)
            previous = os.sched_getaffinity(0)
            if client_cpu >= 0:
                os.sched_setaffinity(0, {client_cpu})
            many: list[LoadResult] = []
            single: list[LoadResult] = []
            try:
                for _ in range(rounds):
                    for conns, into in ((32, many), (1, single)):
                        r = run_load(
                            port,
                            request,
                            conns=conns,
                            warmup=warmup,
                            duration=duration,
                            server_pid=proc.pid,
                        )
                        into.append(r)
                        print(r.line(f"{backend[:6]}/{mode}/{conns}c"))
                        if r.first_error:
                            print(f"    first non-200 response: {r.first_error!r}")
            finally:
                os.sched_setaffinity(0, previous)
            return {
                "rps": statistics.median(r.rps for r in many),
                "p50": statistics.median(r.p50_us for r in single),
                "p99": statistics.median(r.p99_us for r in single),
            }
        finally:
            _stop(proc)
            log.close()


@contextmanager
def _database(backend: str) -> Iterator[str | None]:
    """None for SQLite (the server's data folder); else a fresh PostgreSQL database."""
    if backend == "sqlite":
        yield None
        return
    import sqlalchemy as sa

    from warden.storage.sql.store import normalize_url

    admin_url = normalize_url(PG_URL)
    name = f"warden_bench_p16_{uuid.uuid4().hex[:10]}"
    try:
        engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.SQLAlchemyError:
        yield None
        return
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()
