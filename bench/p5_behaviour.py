"""P5b: what step-up approvals and behavioural governance add to an in-process decision.

``python -m bench p5b`` (``--quick`` for fewer iterations). Measures, in one process, on P1's
world:

* the monitor alone: ``BehaviourMonitor.observe`` + ``outcome`` for a typical call (known tool
  and destination, declared baseline with a budget) — the per-decision cost of the counters;
* ``DecisionService.evaluate`` in agent mode (cached credential) with behaviour on vs off, in
  interleaved batches, on the same Warden; the approval fast path (``has_grants``) runs in both.

Prints ``P5b: overhead p50=<µs> ratio=<on/off> target=1.10``.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path


def _world(root: Path):  # type: ignore[no-untyped-def]
    """P1's world (same agent, policies and PEP context), plus a declared baseline with budgets
    so every budget counter runs too."""
    from bench import _common as c

    world = c.make_agent_world(root)
    w = world.warden
    w.behaviour.set_declared(
        world.agent,
        {
            "tools": [c.TOOL],
            "calls_per_minute": 10**9,
            "budgets": {"calls": 10**9, "tools": {c.TOOL: {"calls": 10**9}}},
        },
        "bench",
    )
    return world, world.agent, world.evaluation()


def _p50(samples: list[float]) -> float:
    return statistics.median(samples)


def run() -> None:
    """Entry point for ``python -m bench p5b`` (honours ``--quick``)."""
    from bench import _common

    main(["--quick"] if _common.QUICK else [])


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    batches, batch = (10, 200) if quick else (40, 500)
    with tempfile.TemporaryDirectory(prefix="p5b-") as tmp:
        world, agent, ev = _world(Path(tmp))
        w = world.warden
        try:
            monitor = w.monitor
            ctx = dict(ev.context)
            now = time.time()
            n = batch * batches
            t0 = time.perf_counter_ns()
            for i in range(n):
                monitor.observe(agent, "task_1", "support", ev.resource.id, ctx, now + i * 1e-4)
                monitor.outcome(agent, ev.resource.id, True, ctx, now + i * 1e-4)
            per_call = (time.perf_counter_ns() - t0) / n / 1000
            print(f"  monitor observe+outcome: {per_call:.2f} µs per call (n={n})")

            on_settings = monitor.settings
            off_settings = replace(on_settings, enabled=False)
            evaluate = w.decisions.evaluate
            first = evaluate(ev)
            if not first.allowed:
                raise RuntimeError(f"the benchmark call is not allowed: {first.context}")
            for _ in range(2000):
                evaluate(ev)
            on: list[float] = []
            off: list[float] = []
            for _ in range(batches):
                for settings, out in ((on_settings, on), (off_settings, off)):
                    monitor.settings = settings
                    for _ in range(batch):
                        t = time.perf_counter_ns()
                        evaluate(ev)
                        out.append((time.perf_counter_ns() - t) / 1000)
            monitor.settings = on_settings
            last = evaluate(ev)
            if not last.allowed:
                raise RuntimeError(f"the benchmark call stopped being allowed: {last.context}")
            w.writer.flush()
            p_on, p_off = _p50(on), _p50(off)
            print(f"  decision p50 behaviour on {p_on:.1f} µs, off {p_off:.1f} µs")
            print(
                f"P5b: overhead p50={p_on - p_off:.1f}µs monitor={per_call:.2f}µs "
                f"ratio={p_on / p_off:.2f} target=1.10"
            )
        finally:
            world.close()


if __name__ == "__main__":
    main(sys.argv[1:])
