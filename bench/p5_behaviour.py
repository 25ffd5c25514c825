"""P5b: what step-up approvals and behavioural governance add to an in-process decision.

``python -m bench.p5_behaviour`` (``--quick`` for fewer iterations). Measures, in one process:

* the monitor alone: ``BehaviourMonitor.observe`` + ``outcome`` for a typical call (known tool
  and destination, declared baseline with a budget) — the per-decision cost of the counters;
* ``DecisionService.evaluate`` in agent mode (cached credential) with behaviour on vs off, in
  interleaved batches, on the same Warden; the approval fast path (``has_grants``) runs in both.

Prints ``P5b: overhead p50=<µs> ratio=<on/off> target=1.10``.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

POLICY = """
@id("read") permit (principal in Group::"support", action == Action::"tickets.read", resource);
@id("delete-needs-owner") @approval("owner")
forbid (principal, action == Action::"tickets.delete", resource)
unless { context.warden.approval.granted };
"""


def _world(root: Path):  # type: ignore[no-untyped-def]
    from warden.authz.authzen import parse_evaluation
    from warden.config import Settings, TrustDomainConfig
    from warden.service.container import Warden
    from warden.tokens.svid import DevTrustDomain

    (root / "policies").mkdir()
    (root / "policies" / "p.cedar").write_text(POLICY)
    trust = DevTrustDomain.create("example.org", root / "trust")
    settings = Settings(
        data_dir=root / "data",
        policies_dir=root / "policies",
        trust_domains=(TrustDomainConfig("example.org", trust.bundle_path),),
    )
    w = Warden(settings)
    w.start()
    agent = w.agents.register(
        {
            "name": "bot",
            "owner": "alice@example.com",
            "purpose": "bench",
            "entitlements": ["tickets.read", "tickets.delete"],
            "groups": ["support"],
        },
        "bench",
    )
    w.behaviour.set_declared(
        agent,
        {
            "destinations": ["api.example.com"],
            "calls_per_minute": 10**9,
            "budgets": {"calls": 10**9},
        },
        "bench",
    )
    form = {
        "grant_type": ["urn:ietf:params:oauth:grant-type:token-exchange"],
        "subject_token": [trust.mint(agent.spiffe_id, "warden")],
        "subject_token_type": ["urn:ietf:params:oauth:token-type:jwt"],
        "scope": ["tickets.read"],
        "authorization_details": [json.dumps([{"type": "agent_task", "purpose": "b"}])],
    }
    token = w.tasks.token(form)["access_token"]
    ev = parse_evaluation(
        {
            "subject": {"type": "agent", "id": agent.spiffe_id, "properties": {"token": token}},
            "action": {"name": "tools/call"},
            "resource": {"type": "tool", "id": "tickets.read"},
            "context": {"destination": "api.example.com", "arguments": {"ticket": "T-1"}},
        }
    )
    return w, agent, ev


def _p50(samples: list[float]) -> float:
    return statistics.median(samples)


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    batches, batch = (10, 200) if quick else (40, 500)
    with tempfile.TemporaryDirectory(prefix="p5b-") as tmp:
        w, agent, ev = _world(Path(tmp))
        try:
            monitor = w.monitor
            ctx = {"destination": "api.example.com", "arguments": {"ticket": "T-1"}}
            now = time.time()
            n = batch * batches
            t0 = time.perf_counter_ns()
            for i in range(n):
                monitor.observe(agent, "task_1", "support", "tickets.read", ctx, now + i * 1e-4)
                monitor.outcome(agent, "tickets.read", True, ctx, now + i * 1e-4)
            per_call = (time.perf_counter_ns() - t0) / n / 1000
            print(f"  monitor observe+outcome: {per_call:.2f} µs per call (n={n})")

            on_settings = monitor.settings
            off_settings = replace(on_settings, enabled=False)
            evaluate = w.decisions.evaluate
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
            w.writer.flush()
            p_on, p_off = _p50(on), _p50(off)
            print(f"  decision p50 behaviour on {p_on:.1f} µs, off {p_off:.1f} µs")
            print(
                f"P5b: overhead p50={p_on - p_off:.1f}µs monitor={per_call:.2f}µs "
                f"ratio={p_on / p_off:.2f} target=1.10"
            )
        finally:
            w.close()


if __name__ == "__main__":
    main(sys.argv[1:])
