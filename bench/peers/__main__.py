"""Warden beside its peers on equal rule sets: ``python -m bench.peers [--quick] [--sizes …]``.

Run by ``make bench-peers`` with the project's venv; the peers live in ``.venv-peers`` (AGT,
cedarpy, pycasbin from PyPI; Cerbos from npm) and are measured in a subprocess of that
environment, Warden in a subprocess of this one, so the two dependency sets never meet. Prints
one table in-process (median µs per decision), one over HTTP (decisions per server CPU-second),
every ratio, ``P9`` per size and ``P10`` (at 1,000 rules), and fails loudly if any engine
answers a sample request differently from the reference.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import _common as c
from bench.peers import cerbos
from bench.peers import rules as r
from bench.peers.cerbos import REPO
from bench.peers.report import load_line, print_http, print_inproc, report_mismatches

PEERS_PYTHON = REPO / ".venv-peers" / "bin" / "python"


def _subprocess_json(python: Path, module: str, sizes: str, budget: float, out: Path) -> Any:
    cmd = [str(python), "-m", module, str(out), "--sizes", sizes, "--budget", str(budget)]
    subprocess.run(cmd, cwd=REPO, check=True)
    return json.loads(out.read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peers", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1 and 100 rules, short timings")
    parser.add_argument("--sizes", help="comma-separated rule counts (default 1,100,1000,10000)")
    parser.add_argument("--no-http", action="store_true", help="in-process only")
    parser.add_argument("--peers-python", type=Path, default=PEERS_PYTHON)
    parser.add_argument("--cerbos", type=Path, default=cerbos.BINARY)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else None
    sizes = sizes or list(r.QUICK_SIZES if args.quick else r.SIZES)
    budget = 0.4 if args.quick else 1.5
    rounds, warmup, duration = (2, 0.5, 1.0) if args.quick else (3, 1.0, 3.0)
    missing = [p for p in (args.peers_python, args.cerbos) if not p.exists()]
    if missing and not (args.no_http and args.cerbos in missing and len(missing) == 1):
        print(f"missing {', '.join(map(str, missing))}: run `make bench-peers` (it installs them)")
        return 2
    print(c.machine_line())
    print(f"cerbos={cerbos.version(args.cerbos) if args.cerbos.exists() else 'absent'}")
    print(f"sizes: {', '.join(f'{s:,}' for s in sizes)} rules; {load_line()} at the start")
    sys.stdout.flush()
    started = time.perf_counter()
    with c.temp_dir("peers") as tmp:
        sz = ",".join(map(str, sizes))
        peers = _subprocess_json(
            args.peers_python, "bench.peers.inproc_peers", sz, budget, tmp / "peers.json"
        )
        warden = _subprocess_json(
            Path(sys.executable), "bench.peers.inproc_warden", sz, budget, tmp / "warden.json"
        )
    print(f"peers: {peers['versions']}; warden side: {warden['versions']}")
    print_inproc(warden, peers, sizes)
    http: dict[int, dict[str, Any]] = {}
    if not args.no_http:
        from bench.peers import http as http_bench

        for s in sizes:
            http[s] = http_bench.measure_size(
                s, args.cerbos, rounds=rounds, warmup=warmup, duration=duration
            )
            print(f"  http: {s:,} rules done", file=sys.stderr, flush=True)
        print_http(http)
    print()
    status = report_mismatches(
        {
            "in-process peers": peers["sizes"],
            "in-process warden": warden["sizes"],
            "http": {str(k): v for k, v in http.items()},
        }
    )
    results = REPO / "bench" / "results"
    results.mkdir(exist_ok=True)
    out = results / f"peers-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    out.write_text(json.dumps({"peers": peers, "warden": warden, "http": http}, indent=1))
    print(f"{load_line()} at the end; {time.perf_counter() - started:.0f} s; raw figures: {out}")
    print("figures are provisional on a shared machine: compare ratios from one run, not runs")
    return status


if __name__ == "__main__":
    sys.exit(main())
