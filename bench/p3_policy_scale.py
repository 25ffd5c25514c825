"""P3: the PDP at 10 vs 10,000 policies, slicing in effect (target p50 ratio ≤ 1.2).

Two policy folders generated with the same recipe (performance.md §3 T3: one global forbid,
per-tool group permits, per-agent scoped permits with ``when`` clauses on the context), loaded
with ``load_policy_dir``, each behind its own ``PolicyDecisionPoint``. Both get the same agent
request shape (agent 0, member of ``team0``, calling tool 0), which matches three policies at
either size. Measured through ``PolicyDecisionPoint.evaluate(AuthzRequest)``: scope/type checks,
context encoding, slice lookup (LRU), entity handle (LRU), cedar. For scale, the unsliced PDP
at 10,000 policies is timed briefly too.
"""

from __future__ import annotations

import time
from typing import Any

from bench import _common as c


def _request() -> Any:
    from warden.authz.types import AuthzRequest, EntityRef

    tool = c.tool_name(0)
    now = int(time.time())
    return AuthzRequest(
        principal=EntityRef("Agent", c.agent_spiffe(0)),
        principal_attrs={
            "name": c.agent_name(0),
            "owner": "alice@example.com",
            "risk_tier": "medium",
            "purpose": "bench",
            "status": "active",
            "trust_domain": c.TRUST_DOMAIN,
        },
        principal_parents=(EntityRef("Group", c.group_name(0)),),
        action=tool,
        resource=EntityRef("Tool", tool),
        context={
            "arguments": {"ticket": "T-1001", "amount": 20},
            "action": {},
            "warden": {
                "now": now,
                "task": {"id": "task_x", "purpose": "bench", "category": "support", "age": 3},
                "scope": [tool, c.tool_name(1)],
                "chain": [c.agent_spiffe(0)],
                "depth": 0,
                "owner": "alice@example.com",
                "approval": {"granted": False},
                "behaviour": {},
            },
        },
    )


def run() -> None:
    from warden.authz.pdp import PolicyDecisionPoint
    from warden.authz.policy_set import load_policy_dir

    c.print_header("P3 PDP at 10 vs 10,000 policies (slicing)")
    batches, batch, warmup = c.sizes((40, 250, 1000), (12, 200, 300))
    big = 10_000
    with c.temp_dir("p3") as root:
        small_info = c.write_scale_policies(root / "p10", 10)
        big_info = c.write_scale_policies(root / "p10000", big)
        t0 = time.perf_counter()
        small = load_policy_dir(root / "p10")
        t_small = time.perf_counter() - t0
        t0 = time.perf_counter()
        large = load_policy_dir(root / "p10000")
        t_large = time.perf_counter() - t0
        print(
            f"  folders: {small_info} loaded in {t_small * 1000:.0f} ms; "
            f"{big_info} loaded in {t_large:.2f} s"
        )
        pdp_small = PolicyDecisionPoint(small)
        pdp_large = PolicyDecisionPoint(large)
        req = _request()
        d_small = pdp_small.evaluate(req)
        d_large = pdp_large.evaluate(req)
        for name, lps, d in (("10", small, d_small), (str(big), large, d_large)):
            print(
                f"  {name:>6} policies: slice {c.slice_size(lps, req)}, allowed={d.allowed}, "
                f"reasons={list(d.reasons)}"
            )
        samples = c.interleave(
            [
                ("pdp.evaluate @ 10 policies", lambda _i: pdp_small.evaluate(req)),
                (f"pdp.evaluate @ {big} policies", lambda _i: pdp_large.evaluate(req)),
            ],
            batches=batches,
            batch=batch,
            warmup=warmup,
        )
        s10 = c.summarize(samples["pdp.evaluate @ 10 policies"])
        sbig = c.summarize(samples[f"pdp.evaluate @ {big} policies"])
        print(s10.line("pdp.evaluate @ 10 policies"))
        print(sbig.line(f"pdp.evaluate @ {big} policies"))
        print(f"  p99 ratio={c.ratio(sbig.p99, s10.p99):.2f}")
        unsliced = PolicyDecisionPoint(large, slicing=False)
        n_unsliced = 10 if c.QUICK else 40
        unsliced.evaluate(req)
        times = []
        for _ in range(n_unsliced):
            t0 = time.perf_counter_ns()
            unsliced.evaluate(req)
            times.append(time.perf_counter_ns() - t0)
        su = c.summarize(times)
        print(su.line(f"(unsliced @ {big}, for scale)"))
        c.profile("pdp.evaluate @ 10,000 policies", lambda _i: pdp_large.evaluate(req), 5000)
        print(
            f"P3: p50_10={s10.p50:.1f} p50_10000={sbig.p50:.1f} "
            f"ratio={c.ratio(sbig.p50, s10.p50):.2f} target=1.2"
        )
