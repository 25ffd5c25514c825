"""Warden's full embedded decision vs a bare indexed Cedar call — runs in the project's venv.

``python -m bench.peers.inproc_warden OUT.json --sizes 1,100 --budget 1.5`` (``bench.peers``
runs it as a subprocess; ``python -m bench p9`` imports ``measure_size`` directly).

Per size: a Warden built like ``warden serve`` (SQLite, background loops running, so the audit
writer thread competes for the GIL as in production) loads the rule set as a policy folder; the
sampled agents are registered with every sampled tool as an entitlement and start a task whose
scope holds them all, so each decision is Cedar's and not the scope check's. Warden answers every
sample request (compared with the reference), then the timed request is measured interleaved
with the bare indexed Cedar call: ``cedarpy.is_authorized`` on a pre-parsed policy set holding
only that agent's grants and the guard, no entities, context = the call's arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from bench import _common as c
from bench.peers import rules as r
from bench.peers._timing import p50_us, p99_us, timed_rounds


class WardenRules:
    """A running Warden holding one rule set, with a task credential per sampled agent."""

    def __init__(self, rs: r.RuleSet, root: Path) -> None:
        folder = root / "policies"
        folder.mkdir(parents=True)
        for name, text in r.cedar_files(rs).items():
            (folder / name).write_text(text)
        self.rules = rs
        t0 = time.perf_counter()
        self.warden, trust = c.open_warden(root, folder)
        self.load_s = time.perf_counter() - t0
        self.tokens: dict[int, str] = {}
        try:
            for a in r.sample_agents(rs):
                tools = [r.tool(t) for t in r.sample_tools(rs, a)]
                body = {
                    "name": r.agent_name(a),
                    "owner": "alice@example.com",
                    "purpose": "bench",
                    "risk_tier": "medium",
                    "entitlements": tools,
                }
                _, self.tokens[a], _ = c.start_task(self.warden, trust, body, " ".join(tools))
            self.warden.start()
        except BaseException:
            self.warden.close()
            raise

    def evaluation(self, req: r.Request) -> Any:
        from warden.authz.authzen import ActionInput, EntityInput, EvaluationInput

        return EvaluationInput(
            subject=EntityInput("agent", r.agent_id(req.agent), {"token": self.tokens[req.agent]}),
            action=ActionInput("tools/call"),
            resource=EntityInput("tool", r.tool(req.tool)),
            context={"arguments": {"amount": req.amount}},
        )

    def decide(self, req: r.Request) -> bool:
        return bool(self.warden.decisions.evaluate(self.evaluation(req)).allowed)

    def close(self) -> None:
        self.warden.close()


def bare_indexed(rs: r.RuleSet, agent: int) -> Any:
    """The denominator, built once: the agent's own policy set, no entities."""
    import cedarpy

    ps = cedarpy.PolicySet.from_str(r.cedar_agent_text(rs, agent))
    empty = cedarpy.Entities.from_json_str("[]")
    return lambda req: bool(cedarpy.is_authorized(r.cedar_request(req), ps, empty).allowed)


def native_indexed(rs: r.RuleSet, agent: int) -> Any:
    """The same call through cedarpy's Rust entry point (``_internal.is_authorized_batch``,
    context pre-encoded with orjson per call) — the route Warden's own adapter takes, skipping
    the public wrapper's copies and JSON round trip. None if this cedarpy does not expose it."""
    import cedarpy
    import orjson

    fn = getattr(getattr(cedarpy, "_internal", None), "is_authorized_batch", None)
    if fn is None:
        return None
    ps = cedarpy.PolicySet.from_str(r.cedar_agent_text(rs, agent))
    inner = cedarpy.Entities.from_json_str("[]")._inner

    def call(req: r.Request) -> bool:
        request = r.cedar_request(req)
        request["context"] = orjson.dumps(request["context"]).decode()
        return bool(orjson.loads(fn([request], ps, inner, None, False)[0])["decision"] == "Allow")

    return call


def measure_size(size: int, budget: float) -> dict[str, Any]:
    rs = r.RuleSet(size)
    req = r.timed_request(rs)
    with c.temp_dir(f"p9-{size}") as root:
        world = WardenRules(rs, root)
        try:
            bare = bare_indexed(rs, req.agent)
            native = native_indexed(rs, req.agent)
            mismatches = []
            for sample in r.sample_requests(rs):
                want = r.decide(rs, sample)
                got = {"warden": world.decide(sample)}
                if sample.agent == req.agent:
                    got["cedar-indexed"] = bare(sample)
                    if native is not None:
                        got["cedar-native"] = native(sample)
                mismatches += [
                    {"engine": name, "request": sample.label(), "want": want, "got": answer}
                    for name, answer in got.items()
                    if answer != want
                ]
            ev = world.evaluation(req)
            evaluate = world.warden.decisions.evaluate
            ops = [("warden", lambda: evaluate(ev)), ("cedar-indexed", lambda: bare(req))]
            if native is not None:
                ops.append(("cedar-native", lambda: native(req)))
            samples = timed_rounds(
                ops,
                budget=budget,
                rounds=10,
                warmup=200,
            )
            world.warden.writer.flush()
        finally:
            world.close()
    return {
        "rules": rs.n_rules,
        "agents": rs.n_agents,
        "sample": len(r.sample_requests(rs)),
        "load_s": world.load_s,
        "mismatches": mismatches,
        "engines": {
            name: {"p50_us": p50_us(s), "p99_us": p99_us(s), "n": len(s)}
            for name, s in samples.items()
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peers.inproc_warden")
    parser.add_argument("out", type=Path)
    parser.add_argument("--sizes", default=",".join(map(str, r.SIZES)))
    parser.add_argument("--budget", type=float, default=1.5, help="seconds per engine per size")
    args = parser.parse_args(argv)
    from importlib import metadata

    result: dict[str, Any] = {
        "versions": {"warden": metadata.version("warden"), "cedarpy": metadata.version("cedarpy")},
        "sizes": {},
    }
    for size in (int(s) for s in args.sizes.split(",")):
        result["sizes"][str(size)] = measure_size(size, 2 * args.budget)
        print(f"  warden in-process: {size} rules done", file=sys.stderr, flush=True)
    args.out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())


P9_TARGET = 2.0


def p9_line(size: int, res: dict[str, Any]) -> str:
    """The P9 line; the denominator is the public ``cedarpy.is_authorized`` (as in P1), the
    native entry point's figure follows in brackets."""
    w, b = res["engines"]["warden"]["p50_us"], res["engines"]["cedar-indexed"]["p50_us"]
    native = res["engines"].get("cedar-native")
    extra = f" (native entry point {native['p50_us']:.1f} µs: {w / native['p50_us']:.2f}x)"
    flag = " MISMATCH" if res["mismatches"] else ""
    return (
        f"P9: rules={size} warden={w:.1f} bare_indexed={b:.1f} ratio={w / b:.2f} "
        f"target={P9_TARGET}{extra if native else ''}{flag}"
    )
