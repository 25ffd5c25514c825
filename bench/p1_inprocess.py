"""P1: in-process decision with a cached credential vs a bare cedarpy call (target ≤ 1.15x p50).

Warden side: ``warden.decisions.evaluate(EvaluationInput)`` in agent mode, the same task
credential every call (verified-token cache hit), with the background loops running as in
production (the audit writer thread drains the decision records to SQLite with group commit and
competes for the GIL; policy watcher and expiry sweeper threads too).

Bare side: ``cedarpy.is_authorized(request, PolicySet, Entities)``: pre-parsed handles, dict
EUIDs, the same principal (attributes, parent group), action, resource and the exact context
Warden hands to Cedar (captured from one real decision), on the same policies (all four are in
the request's slice).
"""

from __future__ import annotations

import time

from bench import _common as c


def run() -> None:
    c.print_header("P1 in-process decision, cached credential, vs bare cedarpy.is_authorized")
    batches, batch, warmup = c.sizes((40, 250, 2000), (12, 200, 500))
    with c.temp_dir("p1") as root:
        world = c.make_agent_world(root)
        try:
            _measure(world, batches, batch, warmup)
        finally:
            world.close()


def _measure(world: c.AgentWorld, batches: int, batch: int, warmup: int) -> None:
    w = world.warden
    ev = world.evaluation()
    req, outcome = c.capture_cedar_request(world, ev)
    bare = c.bare_cedar_for(req, c.AGENT_POLICIES, c.AGENT_ENTITIES)
    bare_answer = bare()
    bare_decision = getattr(bare_answer.decision, "value", bare_answer.decision)
    print(
        f"  request: Agent {req.principal.id} -> Action::{req.action!r} on "
        f"{req.resource.type}::{req.resource.id!r}; warden allowed={outcome.allowed}, "
        f"bare={bare_decision}"
    )
    print(
        f"  policies: warden slice {c.slice_size(w.pdp.policy_set, req)}; "
        f"bare evaluates {bare.n_policies} (same policies)"
    )
    print(
        "  warden side: DecisionService.evaluate (token cache hit + revocation/task/agent checks +"
        " scope check + to_cedar/context + slice & entity caches + cedar + audit submit);"
        f" audit writer thread running={getattr(w.writer, '_thread', None) is not None}"
    )
    evaluate = w.decisions.evaluate

    def warden_op(_i: int) -> object:
        return evaluate(ev)

    t0 = time.perf_counter()
    samples = c.interleave(
        [("warden.decisions.evaluate", warden_op), ("bare cedarpy.is_authorized", bare)],
        batches=batches,
        batch=batch,
        warmup=warmup,
    )
    wall = time.perf_counter() - t0
    ws = c.summarize(samples["warden.decisions.evaluate"])
    bs = c.summarize(samples["bare cedarpy.is_authorized"])
    print(ws.line("warden.decisions.evaluate"))
    print(bs.line("bare cedarpy.is_authorized"))
    print(
        f"  p99 ratio={c.ratio(ws.p99, bs.p99):.2f}  ({batches} interleaved batches of {batch}, "
        f"{warmup} warm-up calls each, {wall:.1f} s)"
    )
    # Throughput including the audit writer's drain (its cost is off the hot path but on the CPU)
    n = batch * 8
    t0 = time.perf_counter()
    for _ in range(n):
        evaluate(ev)
    w.writer.flush()
    amortised = (time.perf_counter() - t0) / n * 1e6
    t0 = time.perf_counter()
    for _ in range(n):
        bare()
    bare_mean = (time.perf_counter() - t0) / n * 1e6
    print(
        f"  amortised incl. audit drain to SQLite (n={n}, then writer.flush()): "
        f"warden {amortised:.1f} µs/decision vs bare {bare_mean:.1f} µs "
        f"({c.ratio(amortised, bare_mean):.2f}x)"
    )
    c.profile("warden.decisions.evaluate (cached credential)", warden_op, 20 * batch)
    print(f"P1: p50={ws.p50:.1f} bare={bs.p50:.1f} ratio={c.ratio(ws.p50, bs.p50):.2f} target=1.15")
