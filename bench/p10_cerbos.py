"""P10: HTTP decisions per server CPU-second, Warden ÷ Cerbos on equal rules (target ≥ 1.5x).

The comparison itself belongs to ``make bench-peers`` (``bench.peers.http``): Cerbos is a peer
and lives in ``.venv-peers``. Here it runs at 1,000 rules if that environment has been
installed (``make peers-install``); otherwise this prints that P10 was deferred, not a number.
"""

from __future__ import annotations

from bench import _common as c
from bench.peers import report
from bench.peers.cerbos import BINARY, REPO
from bench.peers.http import measure_size


def run() -> None:
    c.print_header("P10 HTTP decisions per server CPU-second, Warden vs Cerbos (equal rules)")
    if not BINARY.exists():
        where = BINARY.relative_to(REPO)
        print(
            f"P10: not measured here: deferred to `make bench-peers` (no Cerbos at {where}; "
            f"`make peers-install` puts it there) target={report.P10_TARGET}"
        )
        return
    rounds, warmup, duration = (2, 0.5, 1.0) if c.QUICK else (3, 1.0, 3.0)
    size = report.P10_SIZE
    res = measure_size(size, BINARY, rounds=rounds, warmup=warmup, duration=duration)
    report.print_http({size: res})
    for m in res["mismatches"]:
        print(f"  MISMATCH: {m['engine']} on {m['request']}: got {m['got']}, want {m['want']}")
    if res["mismatches"]:  # the figures compare unequal rule sets: fail the benchmark, loudly
        raise RuntimeError(f"{len(res['mismatches'])} answers differ from the reference")
