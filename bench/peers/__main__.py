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
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import _common as c
from bench.peers import cerbos
from bench.peers import rules as r

REPO = Path(__file__).resolve().parents[2]
PEERS_PYTHON = REPO / ".venv-peers" / "bin" / "python"
P9_TARGET = 2.0
P10_TARGET = 1.5
P10_SIZE = 1000

INPROC_ORDER = ("warden", "cedar-indexed", "cedarpy", "agt", "pycasbin")
LABELS = {
    "warden": "Warden full embedded decision",
    "cedar-indexed": "bare indexed Cedar (set per agent)",
    "cedarpy": "cedarpy, one set of all rules",
    "agt": "AGT PolicyEvaluator",
    "pycasbin": "pycasbin Enforcer",
    "warden-http": "Warden (warden serve)",
    "cerbos": "Cerbos",
}


def load_line() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} on {os.cpu_count()} cores"


def _subprocess_json(python: Path, module: str, sizes: str, budget: float, out: Path) -> Any:
    cmd = [str(python), "-m", module, str(out), "--sizes", sizes, "--budget", str(budget)]
    subprocess.run(cmd, cwd=REPO, check=True)
    return json.loads(out.read_text())


def _fmt_us(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


def print_inproc(warden: dict[str, Any], peers: dict[str, Any], sizes: list[int]) -> None:
    print()
    print("in-process: median µs per decision on the timed request (middle agent, allowed)")
    print(f"  {'engine':<36}" + "".join(f"{f'{s:,} rules':>14}" for s in sizes))
    for name in INPROC_ORDER:
        cells = []
        for s in sizes:
            src = warden if name in ("warden",) else peers
            e = src["sizes"][str(s)]["engines"].get(name)
            cells.append(_fmt_us(e["p50_us"]) if e else "—")
        print(f"  {LABELS[name]:<36}" + "".join(f"{x:>14}" for x in cells))
    print("  (bare indexed Cedar is timed twice: interleaved with Warden in Warden's process —")
    print("   the P9 denominator — and beside the peers in theirs:)")
    cells = [_fmt_us(warden["sizes"][str(s)]["engines"]["cedar-indexed"]["p50_us"]) for s in sizes]
    print(f"  {'  … in the Warden process':<36}" + "".join(f"{x:>14}" for x in cells))
    print()
    print("ratios (÷, median): Warden ÷ each engine, per size")
    for s in sizes:
        w = warden["sizes"][str(s)]["engines"]
        p = peers["sizes"][str(s)]["engines"]
        parts = [f"÷ {n} {c.ratio(w['warden']['p50_us'], p[n]['p50_us']):.2f}" for n in p]
        print(f"  {s:>6,} rules: Warden " + "  ".join(parts))
    for s in sizes:
        w = warden["sizes"][str(s)]["engines"]
        ratio = c.ratio(w["warden"]["p50_us"], w["cedar-indexed"]["p50_us"])
        print(
            f"P9: rules={s} warden={w['warden']['p50_us']:.1f} "
            f"bare_indexed={w['cedar-indexed']['p50_us']:.1f} ratio={ratio:.2f} "
            f"target={P9_TARGET}"
        )


def print_http(http: dict[int, dict[str, Any]]) -> None:
    print()
    print("over HTTP: decisions per server CPU-second (median of rounds), same load generator")
    print(f"  {'size':>8}  {'Warden /CPU-s':>14} {'Cerbos /CPU-s':>14} {'ratio':>6}   rps W / C")
    for s, res in http.items():
        w, cb = res["engines"]["warden-http"], res["engines"]["cerbos"]
        print(
            f"  {s:>8,}  {w['per_cpu_s']:>14,.0f} {cb['per_cpu_s']:>14,.0f} "
            f"{c.ratio(w['per_cpu_s'], cb['per_cpu_s']):>6.2f}   {w['rps']:,.0f} / {cb['rps']:,.0f}"
        )
        for name in ("warden-http", "cerbos"):
            for line in res["engines"][name]["rounds"]:
                print(f"      {name:<12} {line.strip()}")
            if res["engines"][name]["first_error"]:
                print(f"      first non-200: {res['engines'][name]['first_error']!r}")
    size = P10_SIZE if P10_SIZE in http else max(http)
    note = "" if size == P10_SIZE else f" (not measured at {P10_SIZE:,}: largest size run)"
    w, cb = http[size]["engines"]["warden-http"], http[size]["engines"]["cerbos"]
    print(
        f"P10: rules={size} warden_per_cpu_s={w['per_cpu_s']:.0f} "
        f"cerbos_per_cpu_s={cb['per_cpu_s']:.0f} "
        f"ratio={c.ratio(w['per_cpu_s'], cb['per_cpu_s']):.2f} target={P10_TARGET}{note}"
    )


def report_mismatches(sources: dict[str, Any]) -> int:
    bad = [
        (where, size, m)
        for where, data in sources.items()
        for size, res in data.items()
        for m in res["mismatches"]
    ]
    checked = sum(res.get("sample", 0) for data in sources.values() for res in data.values())
    if not bad:
        print(f"equal rules: every engine gave the reference answer on every sample ({checked})")
        return 0
    print()
    print("!" * 78)
    print(f"MISMATCH: {len(bad)} answers differ from the reference — the rule sets are NOT equal")
    for where, size, m in bad:
        print(f"  {where} @ {size} rules: {m['engine']} on {m['request']}: got {m['got']}")
    print("!" * 78)
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peers", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1 and 100 rules, short timings")
    parser.add_argument("--sizes", help="comma-separated rule counts (default 1,100,1000,10000)")
    parser.add_argument("--no-http", action="store_true", help="in-process only")
    parser.add_argument("--peers-python", type=Path, default=PEERS_PYTHON)
    parser.add_argument("--cerbos", type=Path, default=REPO / cerbos.BINARY)
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
