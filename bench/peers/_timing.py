"""Timing for engines whose per-call cost differs by four orders of magnitude (stdlib only).

``bench._common.interleave`` gives every op the same batch size; here each op gets a batch
sized from a short calibration, so a 20 µs call and an 80 ms call both get a fair share of
``budget`` seconds. Rounds alternate the op order, so machine noise hits every op alike.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

Op = Callable[[], Any]


def _calibrate(fn: Op, warmup: int) -> float:
    """Warm ``fn`` up and return its mean seconds per call."""
    t0 = time.perf_counter()
    calls = 0
    while calls < warmup or (time.perf_counter() - t0 < 0.05 and calls < 10 * warmup):
        fn()
        calls += 1
    return (time.perf_counter() - t0) / calls


def timed_rounds(
    ops: Sequence[tuple[str, Op]],
    *,
    budget: float,
    rounds: int = 6,
    warmup: int = 5,
    min_calls: int = 5,
    max_calls: int = 20_000,
) -> dict[str, list[int]]:
    """Per-call ns samples for each op: ``rounds`` alternating batches within ``budget`` s each."""
    per_call = {name: _calibrate(fn, warmup) for name, fn in ops}
    per_round = budget / rounds
    batch = {
        name: max(1, min(max_calls // rounds, int(per_round / max(t, 1e-7))))
        for name, t in per_call.items()
    }
    for name in batch:  # at least ``min_calls`` samples in all
        batch[name] = max(batch[name], -(-min_calls // rounds))
    gc.collect()
    samples: dict[str, list[int]] = {name: [] for name, _ in ops}
    clock = time.perf_counter_ns
    for r in range(rounds):
        order = ops if r % 2 == 0 else list(reversed(ops))
        for name, fn in order:
            out = samples[name]
            for _ in range(batch[name]):
                t0 = clock()
                fn()
                out.append(clock() - t0)
    return samples


def p50_us(samples: Sequence[int]) -> float:
    return statistics.median(samples) / 1000 if samples else float("nan")


def p99_us(samples: Sequence[int]) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] / 1000
