"""P8: peak RSS of one ``warden serve`` process at scale (target ≤ 300 MB).

The SQLite data dir is seeded directly (bulk ``executemany`` through ``store.engine``, rows from
the store's own row encoders) with N agents (one owner each shared by 100 agents),
10 live tasks per agent (active, expiring in a day) and one credential per task. The server is
``warden serve`` in a subprocess with ``--policies`` pointing at a generated policy folder (the
P3 recipe, spread over every agent) and a config file naming a dev SPIFFE trust domain. Once
/readyz answers, one agent exchanges an SVID for a credential and a few decisions are made
(through several agents' slices), then VmHWM/VmRSS are read from /proc/<pid>/status.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import httpx

from bench import _common as c
from bench._serve import ServerNotReadyError, WardenServe, exchange

REPO = Path(__file__).resolve().parents[1]


def _insert(conn: Any, table: Any, rows: list[dict[str, Any]]) -> None:
    """Bulk insert through the driver: SQLAlchemy's own INSERT for SQLite, executemany."""
    from sqlalchemy.dialects import sqlite

    compiled = table.insert().compile(dialect=sqlite.dialect())
    columns = list(compiled.positiontup or [])
    conn.exec_driver_sql(str(compiled), [tuple(row[col] for col in columns) for row in rows])


def seed(data_dir: Path, n_agents: int, tasks_per_agent: int) -> dict[str, float]:
    """Seed the SQLite store in bulk. Rows come from the store's own row encoders
    (``warden.storage.sql.{agents,tasks}._*_row``: same columns, same encodings as
    ``SQLStore``), so the seed follows schema changes; only the inserts are batched."""
    from warden.core.ids import new_id
    from warden.core.model import Agent, Credential, Human, RiskTier, Task
    from warden.storage.sql import agents as sql_agents
    from warden.storage.sql import open_store, sqlite_url_for
    from warden.storage.sql import tasks as sql_tasks
    from warden.storage.sql.tables import agents, credentials, humans, tasks

    data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(sqlite_url_for(data_dir))
    try:
        store.migrate()
        now = time.time()
        owners = [f"owner{k}@example.com" for k in range(max(1, n_agents // 100))]
        entitlements = tuple(sorted(c.tool_name(j) for j in range(10)))
        t0 = time.perf_counter()
        with store.engine.begin() as conn:
            _insert(
                conn, humans, [sql_agents._human_row(Human(id=o, created_at=now)) for o in owners]
            )
            _insert(
                conn,
                agents,
                [
                    sql_agents._agent_row(
                        Agent(
                            name=c.agent_name(i),
                            spiffe_id=c.agent_spiffe(i),
                            owner=owners[i % len(owners)],
                            purpose="bench agent",
                            risk_tier=RiskTier.MEDIUM,
                            entitlements=entitlements,
                            groups=(c.group_name(i % c.N_GROUPS),),
                            created_at=now,
                            updated_at=now,
                        )
                    )
                    for i in range(n_agents)
                ],
            )
        t_agents = time.perf_counter() - t0
        chunk = 20_000
        total = n_agents * tasks_per_agent
        t0 = time.perf_counter()
        for start in range(0, total, chunk):
            task_rows = []
            cred_rows = []
            for n in range(start, min(total, start + chunk)):
                i = n % n_agents
                task = Task(
                    id=new_id("task"),
                    agent_name=c.agent_name(i),
                    spiffe_id=c.agent_spiffe(i),
                    purpose="bench task",
                    category="support",
                    requested_scope=(c.tool_name(i % 10),),
                    granted_scope=(c.tool_name(i % 10),),
                    audience=("http://127.0.0.1",),
                    created_at=now,
                    expires_at=now + 86_400,
                    attestation={"method": "bench"},
                )
                task_rows.append(sql_tasks._task_row(task))
                cred = Credential(
                    jti=new_id("cred"),
                    task_id=task.id,
                    agent_name=task.agent_name,
                    issued_at=now,
                    expires_at=now + 300,
                    kid="bench",
                )
                cred_rows.append(sql_tasks._credential_row(cred))
            with store.engine.begin() as conn:
                _insert(conn, tasks, task_rows)
                _insert(conn, credentials, cred_rows)
        t_tasks = time.perf_counter() - t0
    finally:
        store.close()
    return {"agents": t_agents, "tasks": t_tasks}


def run() -> None:
    from warden.tokens.svid import DevTrustDomain

    c.print_header("P8 peak RSS of one `warden serve` at scale")
    n_agents, n_policies, tasks_per_agent = 10_000, 10_000, 10
    if c.QUICK:
        print("  quick mode: same sizes as the full run (P8 is a single measurement)")
    with c.temp_dir("p8") as root:
        t0 = time.perf_counter()
        info = c.write_scale_policies(root / "policies", n_policies, n_agents=n_agents)
        t_pol = time.perf_counter() - t0
        seeded = seed(root / "data", n_agents, tasks_per_agent)
        print(
            f"  generated {info['policies']} policies over {info['agents']} agents in "
            f"{t_pol:.1f} s; seeded {n_agents} agents in {seeded['agents']:.1f} s and "
            f"{n_agents * tasks_per_agent} live tasks (+1 credential each) in "
            f"{seeded['tasks']:.1f} s"
        )
        trust = DevTrustDomain.create(c.TRUST_DOMAIN, root / "trust")
        try:
            with WardenServe(root, root / "data", root / "policies", trust.bundle_path) as server:
                _measure(server, trust)
        except ServerNotReadyError as exc:
            print(f"  {exc}")
            print("P8: rss=nan target=300")


# Idle observation after the decisions: long enough for the periodic background work (the hot
# state's full resync runs every 30 s by default) to show in the peak.
WINDOW = 45.0
WINDOW_QUICK = 10.0


def _observe(pid: int, window: float) -> dict[str, str]:
    """Sample VmRSS for ``window`` seconds while the server idles; print a short timeline."""
    print(f"  idle window {window:.0f} s (periodic background work included in the peak):")
    start = time.monotonic()
    cpu0 = c.proc_cpu_seconds(pid)
    low = high = math.nan
    next_line = 0.0
    status: dict[str, str] = c.proc_status(pid)
    while True:
        elapsed = time.monotonic() - start
        current = c.proc_status(pid)
        if not current:  # the process is gone
            break
        status = current
        rss = c.kib(status.get("VmRSS", ""))
        low = rss if math.isnan(low) else min(low, rss)
        high = rss if math.isnan(high) else max(high, rss)
        if elapsed >= next_line or elapsed >= window:
            print(
                f"    t+{elapsed:4.0f} s  VmRSS {rss:6.1f} MB (min {low:6.1f}, max {high:6.1f})  "
                f"VmHWM {c.kib(status.get('VmHWM', '')):6.1f} MB  server CPU so far "
                f"{c.proc_cpu_seconds(pid) - cpu0:5.1f} s"
            )
            low = high = math.nan
            next_line += 5.0
        if elapsed >= window:
            break
        time.sleep(0.25)
    return status


def _measure(server: WardenServe, trust: Any) -> None:
    status = c.proc_status(server.pid)
    print(
        f"  ready after {server.startup_s:.1f} s: VmHWM={c.kib(status.get('VmHWM', '')):.1f} MB "
        f"VmRSS={c.kib(status.get('VmRSS', '')):.1f} MB"
    )
    with httpx.Client(base_url=server.base, timeout=30) as client:
        decisions = allowed = 0
        for i in (0, 1, 2, 3, 4):
            spiffe = c.agent_spiffe(i)
            tool = c.tool_name(i % 10)
            try:
                token = exchange(client, trust, spiffe, tool)
            except RuntimeError as exc:
                print(f"  {exc}")
                continue
            for _ in range(5):
                r = client.post(
                    "/access/v1/evaluation",
                    json={
                        "subject": {"type": "agent", "id": spiffe, "properties": {"token": token}},
                        "action": {"name": "tools/call"},
                        "resource": {"type": "tool", "id": tool},
                        "context": {"arguments": {"amount": 10}},
                    },
                )
                decisions += 1
                allowed += bool(r.status_code == 200 and r.json().get("decision"))
        ready_body = client.get("/readyz").json()
    status = c.proc_status(server.pid)
    print(
        f"  {decisions} decisions ({allowed} allowed) for 5 agents; readyz checks "
        f"{ready_body.get('checks')}; now VmHWM={c.kib(status.get('VmHWM', '')):.1f} MB "
        f"VmRSS={c.kib(status.get('VmRSS', '')):.1f} MB"
    )
    status = _observe(server.pid, WINDOW_QUICK if c.QUICK else WINDOW)
    hwm = c.kib(status.get("VmHWM", ""))
    print(
        f"  peak over the whole process life (startup, policy and state load, the decisions, the"
        f" idle window): VmHWM={hwm:.1f} MB (MB = MiB)"
    )
    print(f"P8: rss={hwm:.0f} target=300")
