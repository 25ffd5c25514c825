"""P9: Warden's full embedded decision vs a bare indexed Cedar call, at 1 / 100 / 1k / 10k rules
(target ≤ 2.0x at every size).

The Warden side of ``make bench-peers`` (``bench.peers.inproc_warden``), run here in the
project's venv: the equal-rules generator's policy folder loaded by a Warden built like ``warden
serve`` (background loops and the audit writer running), the sampled agents' decisions checked
against the reference, then ``warden.decisions.evaluate`` timed interleaved with
``cedarpy.is_authorized`` on that agent's own pre-parsed policy set and minimal context.
``--quick``: 1 and 100 rules only.
"""

from __future__ import annotations

from bench import _common as c
from bench.peers import inproc_warden
from bench.peers import rules as r


def run() -> None:
    c.print_header("P9 Warden full embedded decision vs bare indexed Cedar, by rule count")
    sizes = r.QUICK_SIZES if c.QUICK else r.SIZES
    budget = 0.8 if c.QUICK else 3.0
    mismatched = []
    for size in sizes:
        res = inproc_warden.measure_size(size, budget)
        mismatched += res["mismatches"]
        w, b = res["engines"]["warden"], res["engines"]["cedar-indexed"]
        print(
            f"  {size:>6,} rules ({res['agents']:,} agents; loaded in {res['load_s']:.1f} s):"
            f" warden p50={w['p50_us']:.1f} p99={w['p99_us']:.1f} µs (n={w['n']}), bare indexed "
            f"p50={b['p50_us']:.1f} p99={b['p99_us']:.1f} µs (n={b['n']})"
        )
        for m in res["mismatches"]:
            print(f"  MISMATCH: {m['engine']} on {m['request']}: got {m['got']}, want {m['want']}")
        print(inproc_warden.p9_line(size, res))
    if mismatched:  # the timings compare unequal rule sets: fail the benchmark, loudly
        raise RuntimeError(f"{len(mismatched)} answers differ from the reference (MISMATCH above)")
