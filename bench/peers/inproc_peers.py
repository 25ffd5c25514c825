"""The peers in one process: bare Cedar (indexed and full), AGT, pycasbin — runs in ``.venv-peers``.

``python -m bench.peers.inproc_peers OUT.json --sizes 1,100 --budget 1.5``. For each size it
builds every engine on the same logical rules (``bench.peers.rules``), asks each engine every
sample request and records any answer that differs from the reference, then times the common
request (agent 0 on its first tool, allowed) with per-engine batches in alternating rounds.
It never imports Warden: this interpreter is the peers' environment, not the project's.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.peers import rules as r
from bench.peers._timing import p50_us, p99_us, timed_rounds

Decide = Callable[[r.Request], bool]


def _cedar_indexed(rs: r.RuleSet) -> Decide:
    """The bare indexed Cedar call: one pre-parsed policy set per agent, minimal context."""
    import cedarpy

    sets: dict[int, Any] = {}
    empty = cedarpy.Entities.from_json_str("[]")

    def decide(req: r.Request) -> bool:
        ps = sets.get(req.agent)
        if ps is None:
            ps = sets[req.agent] = cedarpy.PolicySet.from_str(r.cedar_agent_text(rs, req.agent))
        return bool(cedarpy.is_authorized(r.cedar_request(req), ps, empty).allowed)

    for a in r.sample_agents(rs):  # build the sampled agents' sets before timing
        decide(r.Request(a, 0, 0))
    return decide


def _cedar_full(rs: r.RuleSet) -> Decide:
    """cedarpy with every rule in one pre-parsed policy set (no index)."""
    import cedarpy

    ps = cedarpy.PolicySet.from_str(r.cedar_text(rs))
    empty = cedarpy.Entities.from_json_str("[]")
    return lambda req: bool(cedarpy.is_authorized(r.cedar_request(req), ps, empty).allowed)


def _agt(rs: r.RuleSet) -> Decide:
    from agent_os.policies.evaluator import PolicyEvaluator
    from agent_os.policies.schema import PolicyDocument

    evaluator = PolicyEvaluator(policies=[PolicyDocument(**r.agt_document(rs))])
    return lambda req: bool(evaluator.evaluate(r.agt_context(req)).allowed)


def _casbin(rs: r.RuleSet, folder: Path) -> Decide:
    import casbin

    model, csv = folder / f"model{rs.size}.conf", folder / f"policy{rs.size}.csv"
    model.write_text(r.casbin_model(rs))
    csv.write_text(r.casbin_policy_csv(rs))
    enforcer = casbin.Enforcer(str(model), str(csv))
    return lambda req: bool(enforcer.enforce(*r.casbin_args(req)))


def _versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for dist in ("cedarpy", "agent-governance-toolkit-core", "pycasbin"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "absent"
    return out


def measure_size(size: int, budget: float, folder: Path) -> dict[str, Any]:
    rs = r.RuleSet(size)
    engines: dict[str, Decide] = {}
    setup: dict[str, float] = {}
    builders: dict[str, Callable[[], Decide]] = {
        "cedar-indexed": lambda: _cedar_indexed(rs),
        "cedarpy": lambda: _cedar_full(rs),
        "agt": lambda: _agt(rs),
        "pycasbin": lambda: _casbin(rs, folder),
    }
    for name, build in builders.items():
        t0 = time.perf_counter()
        engines[name] = build()
        setup[name] = time.perf_counter() - t0
    mismatches = [
        {"engine": name, "request": req.label(), "want": r.decide(rs, req), "got": got}
        for req in r.sample_requests(rs)
        for name, decide in engines.items()
        if (got := decide(req)) != r.decide(rs, req)
    ]
    req = r.timed_request(rs)
    samples = timed_rounds(
        [(name, (lambda d=decide: d(req))) for name, decide in engines.items()], budget=budget
    )
    return {
        "rules": rs.n_rules,
        "agents": rs.n_agents,
        "sample": len(r.sample_requests(rs)),
        "mismatches": mismatches,
        "engines": {
            name: {
                "p50_us": p50_us(s),
                "p99_us": p99_us(s),
                "n": len(s),
                "setup_s": setup[name],
            }
            for name, s in samples.items()
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peers.inproc_peers")
    parser.add_argument("out", type=Path)
    parser.add_argument("--sizes", default=",".join(map(str, r.SIZES)))
    parser.add_argument("--budget", type=float, default=1.5, help="seconds per engine per size")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)  # AGT and casbin log at INFO/WARNING per call when enabled
    warnings.simplefilter("ignore", DeprecationWarning)  # agent_os warns on import
    result: dict[str, Any] = {"versions": _versions(), "sizes": {}}
    with tempfile.TemporaryDirectory(prefix="warden-bench-peers-") as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            result["sizes"][str(size)] = measure_size(size, args.budget, Path(tmp))
            print(f"  peers in-process: {size} rules done", file=sys.stderr, flush=True)
    args.out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
