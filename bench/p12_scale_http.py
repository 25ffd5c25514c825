"""P12: the HTTP decision's cost in a big world vs a small one (target ≤ 1.2x).

Two ``warden serve`` processes, run side by side and pinned to the same core: a small world
(10 agents, 10 policies, 100 live tasks) and a big one (10,000 agents, 10,000 policies, 100,000
live tasks), both seeded like P8 (bulk rows from the store's own encoders; the P3 policy recipe
spread over every agent). Agent 0 gets a credential for tool 0 from each through the token
exchange — the same request matches the same three policies in both worlds — and the closed-loop
client (pinned to the other core) loads them in alternating rounds. The cost is server CPU per
decision (utime + stime of the server process over the window ÷ responses), so a busy machine
moves it less than decisions per second. Both servers must first go idle (start-up work done:
the big one works for a while after ``/readyz``). The policy engine alone is flat (P3): whatever
grows here is elsewhere on the HTTP path.
"""

from __future__ import annotations

import statistics
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import orjson

from bench import _common as c
from bench._loadgen import alternate_rounds, encode_post_json, per_cpu_second
from bench._serve import ServerNotReadyError, WardenServe, exchange
from bench.p8_memory import seed

TARGET = 1.2
WORLDS = {"small": (10, 10, 10), "big": (10_000, 10_000, 10)}  # agents, policies, tasks/agent


def _world(root: Path, n_agents: int, n_policies: int, per_agent: int) -> tuple[Path, Path]:
    t0 = time.perf_counter()
    c.write_scale_policies(root / "policies", n_policies, n_agents=n_agents)
    seeded = seed(root / "data", n_agents, per_agent)
    print(
        f"  {root.name}: {n_agents:,} agents, {n_policies:,} policies, "
        f"{n_agents * per_agent:,} live tasks seeded in {time.perf_counter() - t0:.1f} s "
        f"(tasks {seeded['tasks']:.1f} s)"
    )
    return root / "data", root / "policies"


def _settle(name: str, pid: int, *, limit: float = 90.0) -> None:
    """Wait until the idle server uses < 5% of a core (start-up work done: state load, first
    sweeps), so the rounds time decisions, not a start-up transient; print what was seen."""
    t0 = time.monotonic()
    idle = float("nan")
    while time.monotonic() - t0 < limit:
        cpu0 = c.proc_cpu_seconds(pid)
        time.sleep(1.0)
        idle = c.proc_cpu_seconds(pid) - cpu0
        if idle < 0.05:
            break
    print(
        f"  {name}: idle CPU {idle:.0%} of a core after {time.monotonic() - t0:.0f} s of waiting"
        + ("" if idle < 0.05 else " (still busy: its background work is in the figures)")
    )


def _body(token: str) -> bytes:
    return orjson.dumps(
        {
            "subject": {
                "type": "agent",
                "id": c.agent_spiffe(0),
                "properties": {"token": token},
            },
            "action": {"name": "tools/call"},
            "resource": {"type": "tool", "id": c.tool_name(0)},
            "context": {"arguments": {"amount": 10}},
        }
    )


def run() -> None:
    from warden.tokens.svid import DevTrustDomain

    c.print_header("P12 HTTP decision cost, 10k agents / 10k policies / 100k tasks vs 10/10/100")
    rounds, warmup, duration = (2, 1.0, 2.0) if c.QUICK else (4, 1.5, 4.0)
    server_cpu, client_cpu = c.cpu_split()
    with c.temp_dir("p12") as root, ExitStack() as stack:
        trust = DevTrustDomain.create(c.TRUST_DOMAIN, root / "trust")
        servers: dict[str, WardenServe] = {}
        requests: dict[str, bytes] = {}
        try:
            for name, (agents, policies, per_agent) in WORLDS.items():
                (root / name).mkdir()
                data, folder = _world(root / name, agents, policies, per_agent)
                server = stack.enter_context(
                    WardenServe(root / name, data, folder, trust.bundle_path, cpu=server_cpu)
                )
                servers[name] = server
                with httpx.Client(base_url=server.base, timeout=30) as client:
                    token = exchange(client, trust, c.agent_spiffe(0), c.tool_name(0))
                    answer = client.post(
                        "/access/v1/evaluation",
                        content=_body(token),
                        headers={"content-type": "application/json"},
                    ).json()
                print(
                    f"  {name}: ready in {server.startup_s:.1f} s; agent 0 on tool 0 "
                    f"decision={answer.get('decision')}; RSS "
                    f"{c.kib(c.proc_status(server.pid).get('VmRSS', '')):.0f} MB"
                )
                path = "/access/v1/evaluation"
                requests[name] = encode_post_json(path, server.port, _body(token))
        except ServerNotReadyError as exc:
            print(f"  {exc}")
            print(f"P12: ratio=nan target={TARGET} (a server did not start)")
            return
        for name, server in servers.items():
            _settle(name, server.pid)
        print(
            f"  both servers on cpu {server_cpu}, client on cpu {client_cpu}; {rounds} rounds x "
            f"(small, big), {warmup:.1f} s warm-up + {duration:.1f} s each, 32 connections"
        )
        results = alternate_rounds(
            {name: (s.port, requests[name], s.pid) for name, s in servers.items()},
            rounds=rounds,
            warmup=warmup,
            duration=duration,
            conns=32,
            client_cpu=client_cpu,
        )
    cost: dict[str, float] = {}
    for name, runs in results.items():
        for run_ in runs:
            print(run_.line(name))
            if run_.first_error:
                print(f"    first non-200 response: {run_.first_error!r}")
        cost[name] = 1e6 / per_cpu_second(runs)
        rps = statistics.median(x.rps for x in runs)
        print(f"  {name}: {cost[name]:.0f} µs of server CPU per decision, median {rps:.0f} rps")
    print(
        f"P12: small={cost['small']:.0f}us big={cost['big']:.0f}us "
        f"ratio={c.ratio(cost['big'], cost['small']):.2f} target={TARGET}"
    )
