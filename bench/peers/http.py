"""Warden's HTTP server vs Cerbos on the same rules, the same load generator, the same core.

Per size: a policy folder for ``warden serve`` (the sampled agents registered beforehand, their
credentials obtained through the token exchange once it listens) and a Cerbos disk store with
the same rules. Both servers are pinned to one core and the closed-loop keep-alive client
(``bench._loadgen``) to the other. Before any load, every sample request is sent to both and the
answers compared with the reference. Then rounds alternate Warden, Cerbos, Warden, …; each
round's figure is decisions per server CPU-second (responses ÷ the server process's utime+stime
over the window, from /proc), which a busy machine disturbs far less than decisions per second.
"""

from __future__ import annotations

import statistics
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench import _common as c
from bench._loadgen import LoadResult, alternate_rounds, encode_post_json, per_cpu_second
from bench._serve import WardenServe, exchange
from bench.peers import rules as r
from bench.peers.cerbos import CerbosServe

CONNS = 32


def _prepare_warden(rs: r.RuleSet, root: Path) -> tuple[Path, Path, Any]:
    """Policy folder and data dir (sampled agents registered): (data, policies, trust)."""
    policies = root / "policies"
    policies.mkdir(parents=True)
    for name, text in r.cedar_files(rs).items():
        (policies / name).write_text(text)
    w, trust = c.open_warden(root, policies)
    try:
        for a in r.sample_agents(rs):
            w.agents.register(
                {
                    "name": r.agent_name(a),
                    "owner": "alice@example.com",
                    "purpose": "bench",
                    "risk_tier": "medium",
                    "entitlements": [r.tool(t) for t in r.sample_tools(rs, a)],
                },
                "bench",
            )
    finally:
        w.close()
    return root / "data", policies, trust


def _check_equal(
    rs: r.RuleSet, warden: httpx.Client, cerbos: httpx.Client, tokens: dict[int, str]
) -> list[dict[str, Any]]:
    mismatches = []
    for req in r.sample_requests(rs):
        want = r.decide(rs, req)
        w = warden.post("/access/v1/evaluation", json=r.authzen_evaluation(req, tokens[req.agent]))
        cb = cerbos.post("/api/check/resources", json=r.cerbos_check(req))
        got = {
            "warden-http": w.status_code == 200 and w.json().get("decision") is True,
            "cerbos": cb.status_code == 200 and r.cerbos_allowed(cb.json(), req),
        }
        mismatches += [
            {"engine": name, "request": req.label(), "want": want, "got": answer}
            for name, answer in got.items()
            if answer != want
        ]
    return mismatches


def _summary(runs: list[LoadResult]) -> dict[str, Any]:
    return {
        "rps": statistics.median(x.rps for x in runs),
        "per_cpu_s": per_cpu_second(runs),
        "p50_us": statistics.median(x.p50_us for x in runs),
        "server_cpu": statistics.median(x.server_cpu for x in runs),
        "client_cpu": max(x.client_cpu for x in runs),
        "errors": sum(x.errors for x in runs),
        "first_error": next((x.first_error for x in runs if x.first_error), ""),
        "rounds": [x.line("") for x in runs],
    }


def measure_size(
    size: int, binary: Path, *, rounds: int, warmup: float, duration: float
) -> dict[str, Any]:
    rs = r.RuleSet(size)
    server_cpu, client_cpu = c.cpu_split()
    with c.temp_dir(f"peers-http-{size}") as root, ExitStack() as stack:
        (root / "w").mkdir()
        (root / "cb").mkdir()
        data, policies, trust = _prepare_warden(rs, root / "w")
        warden = stack.enter_context(
            WardenServe(root / "w", data, policies, trust.bundle_path, cpu=server_cpu)
        )
        cerbos = stack.enter_context(CerbosServe(binary, root / "cb", rs, cpu=server_cpu))
        wc = stack.enter_context(httpx.Client(base_url=warden.base, timeout=30))
        cc = stack.enter_context(httpx.Client(base_url=cerbos.base, timeout=30))
        tokens = {
            a: exchange(wc, trust, r.agent_id(a), " ".join(map(r.tool, r.sample_tools(rs, a))))
            for a in r.sample_agents(rs)
        }
        mismatches = _check_equal(rs, wc, cc, tokens)
        req = r.timed_request(rs)
        loads = {
            "warden-http": (
                warden,
                encode_post_json(
                    "/access/v1/evaluation",
                    warden.port,
                    orjson.dumps(r.authzen_evaluation(req, tokens[req.agent])),
                ),
            ),
            "cerbos": (
                cerbos,
                encode_post_json(
                    "/api/check/resources", cerbos.port, orjson.dumps(r.cerbos_check(req))
                ),
            ),
        }
        results = alternate_rounds(
            {name: (server.port, request, server.pid) for name, (server, request) in loads.items()},
            rounds=rounds,
            warmup=warmup,
            duration=duration,
            conns=CONNS,
            client_cpu=client_cpu,
        )
        startup = {"warden-http": warden.startup_s, "cerbos": cerbos.startup_s}
    return {
        "rules": rs.n_rules,
        "sample": len(r.sample_requests(rs)),
        "pinning": {"server_cpu": server_cpu, "client_cpu": client_cpu, "conns": CONNS},
        "mismatches": mismatches,
        "engines": {
            name: {**_summary(runs), "startup_s": startup[name]} for name, runs in results.items()
        },
    }
