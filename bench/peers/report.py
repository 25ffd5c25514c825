"""Printing the peer comparison: the tables, every ratio, the P9/P10 lines, mismatches."""

from __future__ import annotations

import os
from typing import Any

from bench import _common as c
from bench.peers import inproc_warden

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
    print("  (bare indexed Cedar again, interleaved with Warden in Warden's process — the P9")
    print("   denominator — and through cedarpy's native entry point, the route Warden's adapter")
    print("   takes, which skips the public wrapper's JSON round trip:)")
    for name, label in (
        ("cedar-indexed", "  … in the Warden process"),
        ("cedar-native", "  … native entry point, same process"),
    ):
        cells = [
            _fmt_us(e["p50_us"]) if (e := warden["sizes"][str(s)]["engines"].get(name)) else "—"
            for s in sizes
        ]
        print(f"  {label:<36}" + "".join(f"{x:>14}" for x in cells))
    print()
    print("ratios (÷, median): Warden ÷ each engine, per size")
    for s in sizes:
        w = warden["sizes"][str(s)]["engines"]
        p = peers["sizes"][str(s)]["engines"]
        parts = [f"÷ {n} {c.ratio(w['warden']['p50_us'], p[n]['p50_us']):.2f}" for n in p]
        print(f"  {s:>6,} rules: Warden " + "  ".join(parts))
    for s in sizes:
        print(inproc_warden.p9_line(s, warden["sizes"][str(s)]))


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
