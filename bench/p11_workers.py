"""P11: ``warden serve --workers 2`` decisions/s ÷ one worker on 2 cores (target ≥ 1.7x).

The same world (the P3 policy recipe at 100 policies over 100 agents, SQLite in a fresh data
dir), served once with ``--workers 1`` and once with ``--workers 2``; agent 0 gets a credential
for tool 0 from each through the token exchange; the closed-loop keep-alive client
(``bench._loadgen``, 32 connections) loads them in alternating rounds. Nothing is pinned: the
two workers and the client share the machine's two cores, as a deployment would (the client's
own CPU is part of the figure, so 2.0x is out of reach by construction). The figure is the
median decisions/s of each side; the CPU line sums every process of the server's tree.
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path

import httpx

from bench import _common as c
from bench._loadgen import alternate_rounds, encode_post_json
from bench._serve import ServerNotReadyError, WardenServe, exchange
from bench.p8_memory import seed
from bench.p12_scale_http import _body

TARGET = 1.7


class Workers(WardenServe):
    def __init__(self, root: Path, data: Path, policies: Path, bundle: Path, n: int) -> None:
        super().__init__(root, data, policies, bundle)
        self.workers = n

    def command(self) -> list[str]:
        return [*super().command(), "--workers", str(self.workers)]


def _tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and its children (the workers)."""
    total = c.proc_cpu_seconds(pid)
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return total
    return total + sum(_tree_cpu(int(child)) for child in children)


def _settle(name: str, server: Workers, *, limit: float = 120.0) -> None:
    """Wait until every worker listens and the idle tree uses < 5% of a core (start-up done)."""
    import time

    t0 = time.monotonic()
    while server.workers > 1 and time.monotonic() - t0 < limit:
        if "workers             " in server.log_path.read_text(errors="replace"):
            break
        time.sleep(0.2)
    idle = float("nan")
    while time.monotonic() - t0 < limit:
        cpu0 = _tree_cpu(server.pid)
        time.sleep(1.0)
        idle = _tree_cpu(server.pid) - cpu0
        if idle < 0.05 * server.workers:
            break
    print(f"  {name}: idle CPU {idle:.0%} of a core after {time.monotonic() - t0:.0f} s of waiting")


def run() -> None:
    from warden.tokens.svid import DevTrustDomain

    c.print_header("P11 two workers vs one, 2 cores")
    rounds, warmup, duration = (2, 1.0, 3.0) if c.QUICK else (3, 1.5, 5.0)
    with c.temp_dir("p11") as root:
        trust = DevTrustDomain.create(c.TRUST_DOMAIN, root / "trust")
        loads: dict[str, tuple[int, bytes, int]] = {}
        servers: dict[str, Workers] = {}
        try:
            for n in (1, 2):
                name = f"{n} worker{'s' if n > 1 else ''}"
                home = root / f"w{n}"
                home.mkdir()
                c.write_scale_policies(home / "policies", 100, n_agents=100)
                seed(home / "data", 100, 1)
                server = Workers(home, home / "data", home / "policies", trust.bundle_path, n)
                server.__enter__()
                servers[name] = server
                with httpx.Client(base_url=server.base, timeout=30) as client:
                    token = exchange(client, trust, c.agent_spiffe(0), c.tool_name(0))
                    answer = client.post(
                        "/access/v1/evaluation",
                        content=_body(token),
                        headers={"content-type": "application/json"},
                    ).json()
                print(f"  {name}: ready in {server.startup_s:.1f} s; decision={answer['decision']}")
                request = encode_post_json("/access/v1/evaluation", server.port, _body(token))
                loads[name] = (server.port, request, server.pid)
            for name, server in servers.items():
                _settle(name, server)
            cpu0 = {name: _tree_cpu(s.pid) for name, s in servers.items()}
            results = alternate_rounds(
                loads, rounds=rounds, warmup=warmup, duration=duration, conns=32, client_cpu=-1
            )
            cpu = {name: _tree_cpu(s.pid) - cpu0[name] for name, s in servers.items()}
        except ServerNotReadyError as exc:
            print(f"  {exc}")
            print(f"P11: ratio=nan target={TARGET} (a server did not start)")
            return
        finally:
            for server in servers.values():
                server.stop()
    rps: dict[str, float] = {}
    for name, runs in results.items():
        for run_ in runs:
            print(f"  {name}: {run_.rps:,.0f} decisions/s ({run_.errors} errors)")
        rps[name] = statistics.median(r.rps for r in runs)
        served = sum(r.responses for r in runs)
        print(
            f"  {name}: median {rps[name]:,.0f} decisions/s; server tree CPU {cpu[name]:.1f} s "
            f"over the rounds (≈{served / cpu[name] if cpu[name] else float('nan'):,.0f} "
            "responses per CPU-second, warm-ups' CPU included)"
        )
    one, two = rps["1 worker"], rps["2 workers"]
    print(
        f"P11: one={one:,.0f}/s two={two:,.0f}/s ratio={c.ratio(two, one):.2f} target={TARGET} "
        f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
    )
