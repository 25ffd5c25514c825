"""Instructions per decision under callgrind: ``python -m bench --instructions p1|p9``.

Wall times on a shared 2-core machine move with the neighbours' load; instruction counts do not
(callgrind counts instructions, not seconds: the same binary on the same input gives the same
total whatever else runs). This runs one in-process case under ``valgrind --tool=callgrind`` and
prints instructions per decision for Warden and for its bare-Cedar denominator:

* ``p1`` — the P1 request (cached credential, the agent policies) vs bare ``cedarpy`` on the
  exact request Warden hands Cedar (full ``context.warden``);
* ``p9`` — the equal-rules request at ``--rules`` rules (default 100) vs the bare indexed Cedar
  call (the agent's own policy set, minimal context).

How: valgrind starts with instrumentation off (``--instr-atstart=no``), so imports and set-up run
at valgrind's uninstrumented speed; a two-function C helper, compiled here with ``gcc`` against
``valgrind/callgrind.h``, zeroes the counters and turns instrumentation on just before ``N``
calls and dumps just after. Threads are counted apart (``--separate-threads``): the request
thread per window, the audit writer (flushed inside the window) beside it, and the background
loops — which poll on timers, so under valgrind's ≈50x slowdown they run ≈50x more per decision
than in production — reported but not charged.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CASES = ("p1", "p9")
Window = tuple[str, Callable[[], Any], Callable[[], None]]  # label, one call, flush
MARKERS_C = """\
#include <valgrind/callgrind.h>
void bench_start(void) { CALLGRIND_ZERO_STATS; CALLGRIND_START_INSTRUMENTATION; }
void bench_stop(void) { CALLGRIND_STOP_INSTRUMENTATION; CALLGRIND_DUMP_STATS; }
"""


# ----------------------------------------------------------------------------- inside valgrind


@contextmanager
def _case(case: str, rules: int) -> Iterator[list[Window]]:
    """(label, one call, what to flush before the window closes) for Warden and its bare call."""
    from bench import _common as c

    with c.temp_dir(f"instr-{case}") as root:
        if case == "p1":
            world = c.make_agent_world(root)
            try:
                ev = world.evaluation()
                req, _ = c.capture_cedar_request(world, ev)
                bare = c.bare_cedar_for(req, c.AGENT_POLICIES, c.AGENT_ENTITIES)
                evaluate, flush = world.warden.decisions.evaluate, world.warden.writer.flush
                yield [
                    ("warden.decisions.evaluate", lambda: evaluate(ev), flush),
                    ("bare cedarpy (Warden's request)", bare, lambda: None),
                ]
            finally:
                world.close()
        else:
            from bench.peers import inproc_warden
            from bench.peers import rules as r

            rs = r.RuleSet(rules)
            wr = inproc_warden.WardenRules(rs, root)
            try:
                req = r.timed_request(rs)
                ev = wr.evaluation(req)
                indexed = inproc_warden.bare_indexed(rs, req.agent)
                evaluate, flush = wr.warden.decisions.evaluate, wr.warden.writer.flush
                yield [
                    (f"warden.decisions.evaluate @ {rules} rules", lambda: evaluate(ev), flush),
                    ("bare indexed Cedar", lambda: indexed(req), lambda: None),
                ]
            finally:
                wr.close()


def inner(case: str, rules: int, calls: int, markers: Path) -> None:
    lib = ctypes.CDLL(str(markers))
    with _case(case, rules) as ops:
        for label, fn, flush in ops:
            for _ in range(200):  # warm caches (token, slice, entities) outside the window
                fn()
            flush()
            lib.bench_start()
            for _ in range(calls):
                fn()
            flush()
            lib.bench_stop()
            print(f"window: {label}", flush=True)


# ----------------------------------------------------------------------------- outside


def _totals(path: Path) -> int:
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("totals:"):
            return int(line.split()[1])
    return 0


def _missing_tools() -> list[str]:
    missing = [t for t in ("valgrind", "gcc") if shutil.which(t) is None]
    if not Path("/usr/include/valgrind/callgrind.h").exists():
        missing.append("valgrind's callgrind.h (Debian: valgrind)")
    return missing


def run(case: str, *, rules: int = 100, calls: int = 300) -> int:
    print(f"== instructions per decision under callgrind: case {case}, {calls} calls per side")
    missing = _missing_tools()
    if missing:
        print(f"  cannot count instructions: missing {', '.join(missing)}")
        return 2
    with tempfile.TemporaryDirectory(prefix="warden-bench-callgrind-") as tmp:
        out = Path(tmp)
        (out / "markers.c").write_text(MARKERS_C)
        so, src = str(out / "markers.so"), str(out / "markers.c")
        subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", so, src], check=True)
        cmd = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            "--separate-threads=yes",
            f"--callgrind-out-file={out}/callgrind.out",
            sys.executable,
            "-m",
            "bench._instructions",
            "--inner",
            case,
            "--rules",
            str(rules),
            "--calls",
            str(calls),
            "--markers",
            so,
        ]
        env = {**os.environ, "PYTHONHASHSEED": "0"}  # same dict/set orders run to run
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
        labels = [m.group(1) for m in re.finditer(r"^window: (.*)$", proc.stdout, re.M)]
        # --separate-threads: a window's dump holds the calling (request) thread,
        # ``callgrind.out.<window>-01``; every other thread's count lands in its final dump,
        # ``callgrind.out-<thread>``, over both windows
        windows = sorted(
            out.glob("callgrind.out.*-01"), key=lambda p: int(p.name.split(".")[2][:-3])
        )
        if proc.returncode != 0 or len(windows) < len(labels) or len(labels) != 2:
            print(f"  callgrind run failed (exit {proc.returncode}); its output:")
            print((proc.stdout + proc.stderr)[-3000:])
            return 1
        per_call = [_totals(d) / calls for d in windows[:2]]
        writer = background = 0.0
        for thread in out.glob("callgrind.out-*"):
            total = _totals(thread) / calls
            # the audit writer is the one thread hashing (SHA-256 seals); only Warden's window
            # writes audit records
            if "sha256" in thread.read_text(errors="replace").lower():
                writer += total
            else:
                background += total
    (warden_label, bare_label), (request, bare) = labels, per_call
    print(f"  {warden_label:<40} {request:>12,.0f} instructions per decision (request thread)")
    print(f"  {'  + its audit writer thread':<40} {writer:>12,.0f}")
    print(f"  {bare_label:<40} {bare:>12,.0f}")
    print(
        f"  ratio {request / bare:.2f} request thread alone; {(request + writer) / bare:.2f} with "
        "the audit writer (flushed inside the window)"
    )
    print(
        f"  not charged: {background:,.0f} per decision in background loops (replication, policy"
        " sync, governance), counted over both windows; under valgrind they run ≈50x longer per "
        "decision than in production"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench._instructions")
    parser.add_argument("--inner", choices=CASES, required=True)
    parser.add_argument("--rules", type=int, default=100)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--markers", type=Path, required=True)
    args = parser.parse_args(argv)
    inner(args.inner, args.rules, args.calls, args.markers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
