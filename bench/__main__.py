"""Run the benchmarks: ``python -m bench [--quick] [--profile] [p1 p9 …]`` (default: all).

``python -m bench --instructions p1|p9 [--rules N]`` counts instructions per decision under
callgrind instead (Warden vs its bare-Cedar denominator; repeatable on a busy machine)."""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback

from bench import _common

# In the order of issue 12's table (P3 and P5b, from earlier issues, beside their neighbours).
BENCHMARKS = {
    "p1": "bench.p1_inprocess",
    "p9": "bench.p9_embedded",
    "p2": "bench.p2_fresh_credential",
    "p3": "bench.p3_policy_scale",
    "p4": "bench.p4_http",
    "p10": "bench.p10_cerbos",
    "p11": "bench.p11_workers",
    "p12": "bench.p12_scale_http",
    "p5": "bench.p5_replicas",
    "p7": "bench.p7_mcp_proxy",
    "p5b": "bench.p5_behaviour",
    "p8": "bench.p8_memory",
    "p15": "bench.p15_replay",
    "p16": "bench.p16_durable_audit",
    "trace": "bench.trace_cost",
    "counters": "bench.counters_cost",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"benchmarks to run: {' '.join(BENCHMARKS)}"
    )
    parser.add_argument("--quick", action="store_true", help="fewer iterations, smaller sizes")
    parser.add_argument(
        "--profile", action="store_true", help="also cProfile the Warden side of p1, p2, p3"
    )
    parser.add_argument(
        "--instructions",
        choices=("p1", "p9"),
        metavar="CASE",
        help="count instructions per decision under callgrind for CASE (p1 or p9) and stop",
    )
    parser.add_argument("--rules", type=int, default=100, help="rule count for --instructions p9")
    args = parser.parse_args(argv)
    if args.instructions:
        from bench import _instructions

        print(_common.machine_line())
        return _instructions.run(args.instructions, rules=args.rules)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}: choose from {' '.join(BENCHMARKS)}")
    _common.QUICK = args.quick
    _common.PROFILE = args.profile
    names = args.names or list(BENCHMARKS)
    print(_common.machine_line())
    print(f"mode: {'quick' if args.quick else 'full'}; benchmarks: {' '.join(names)}")
    sys.stdout.flush()
    started = time.perf_counter()
    failed = []
    for name in names:
        t0 = time.perf_counter()
        try:
            importlib.import_module(BENCHMARKS[name]).run()
        except Exception:
            failed.append(name)
            print(f"{name.upper()}: failed, see the traceback below")
            traceback.print_exc(file=sys.stdout)
        print(f"  ({name} took {time.perf_counter() - t0:.1f} s)")
        sys.stdout.flush()
    print()
    note = f"; failed: {' '.join(failed)}" if failed else ""
    print(f"total: {time.perf_counter() - started:.1f} s{note}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
