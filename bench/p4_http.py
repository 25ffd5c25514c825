"""P4: HTTP decision throughput vs hello-world on the same server (target ≥ 0.5x).

One server process (``bench._server``: Warden's FastAPI app under uvicorn, 1 worker, uvloop +
httptools as ``warden serve`` picks them) pinned to one core, serving both
``POST /access/v1/evaluation`` (agent mode, the same credential every request: cached) and a
trivial ``GET /bench/hello`` added to the same app object (same middleware, same process). The
closed-loop keep-alive client (``bench._loadgen``) runs here, pinned to the other core. Runs
alternate hello, pdp, hello, pdp, …; each side's figure is the median of its runs.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import orjson

from bench import _common as c
from bench._loadgen import LoadResult, encode_get, encode_post_json, run_load

REPO = Path(__file__).resolve().parents[1]


def run() -> None:
    c.print_header("P4 HTTP decision throughput vs hello-world, same server stack and process")
    rounds, duration, warmup = (2, 2.0, 1.0) if c.QUICK else (3, 5.0, 1.5)
    conns = 32
    server_cpu, client_cpu = c.cpu_split()
    if server_cpu < 0:
        print("  only one usable core: server and client NOT pinned apart (figures are shared)")
    with c.temp_dir("p4") as root:
        ready = root / "ready.json"
        log = (root / "server.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench._server", str(root), str(ready), str(server_cpu)],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            info = _wait_ready(proc, ready, root / "server.log", timeout=90)
            if info is None:
                return
            _measure(proc.pid, info, rounds, duration, warmup, conns, server_cpu, client_cpu)
        finally:
            _stop(proc)
            log.close()


def _wait_ready(
    proc: subprocess.Popen[bytes], ready: Path, log: Path, *, timeout: float
) -> dict[str, str] | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready.exists():
            info: dict[str, str] = json.loads(ready.read_text())
            return info
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    print("  the server did not start; its log:")
    print(log.read_text(errors="replace")[-3000:])
    print("P4: pdp_rps=nan hello_rps=nan ratio=nan target=0.5")
    return None


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _measure(
    pid: int,
    info: dict[str, str],
    rounds: int,
    duration: float,
    warmup: float,
    conns: int,
    server_cpu: int,
    client_cpu: int,
) -> None:
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
    requests = {
        "hello": encode_get("/bench/hello", port),
        "pdp": encode_post_json("/access/v1/evaluation", port, body),
    }
    print(
        f"  server pid {pid} on cpu {server_cpu}, client on cpu {client_cpu}; {conns} keep-alive "
        f"connections; {rounds} rounds x (hello, pdp), {warmup:.1f} s warm-up + {duration:.1f} s "
        f"each; pdp body {len(body)} bytes"
    )
    print(f"  hello route placed at position {info.get('hello_position')}")
    previous = os.sched_getaffinity(0)
    if client_cpu >= 0:
        os.sched_setaffinity(0, {client_cpu})
    results: dict[str, list[LoadResult]] = {"hello": [], "pdp": []}
    try:
        for _ in range(rounds):
            for name in ("hello", "pdp"):
                r = run_load(
                    port,
                    requests[name],
                    conns=conns,
                    warmup=warmup,
                    duration=duration,
                    server_pid=pid,
                )
                results[name].append(r)
                print(r.line(name))
                if r.first_error:
                    print(f"    first non-200 response: {r.first_error!r}")
    finally:
        os.sched_setaffinity(0, previous)
    hello = statistics.median(r.rps for r in results["hello"])
    pdp = statistics.median(r.rps for r in results["pdp"])
    per_hello = 1e6 / hello if hello else float("nan")
    per_pdp = 1e6 / pdp if pdp else float("nan")
    print(
        f"  server time per request (1/rps): hello {per_hello:.0f} µs, pdp {per_pdp:.0f} µs, "
        f"added by the decision endpoint {per_pdp - per_hello:.0f} µs"
    )
    per_cpu = {
        name: statistics.median(r.rps / r.server_cpu for r in rs if r.server_cpu > 0)
        for name, rs in results.items()
    }
    print(
        f"  per server CPU-second (robust to a busy machine): hello {per_cpu['hello']:.0f}, "
        f"pdp {per_cpu['pdp']:.0f} requests = {1e6 / per_cpu['hello']:.0f} vs "
        f"{1e6 / per_cpu['pdp']:.0f} µs of server CPU per request (all threads); ratio "
        f"{c.ratio(per_cpu['pdp'], per_cpu['hello']):.2f}"
    )
    if any(r.client_cpu > 0.9 for rs in results.values() for r in rs):
        print("  WARNING: the client used >90% of its core in some run: it may be the limit")
    if any(r.server_cpu < 0.9 for rs in results.values() for r in rs):
        print(
            "  WARNING: the server got <90% of its core in some run (closed loop saturates it, so"
            " something else was running on that core): treat this round as noisy"
        )
    print(f"P4: pdp_rps={pdp:.0f} hello_rps={hello:.0f} ratio={c.ratio(pdp, hello):.2f} target=0.5")
