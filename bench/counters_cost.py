"""Shared counters on the decision path (issue 11 item 6, ADR 0094): what one decision's
counter update costs on each candidate engine, interleaved call by call.

- ``local``: ``BehaviourMonitor.observe`` + ``outcome`` of a budgeted agent, in memory (one
  replica, as ``make run`` serves);
- ``redis``: the same monitor on ``RedisCounters`` (the machine's Redis on loopback, a key
  prefix of its own, deleted afterwards): one ``EVALSHA`` round trip per decision;
- ``redis reserve``: that round trip alone;
- ``pg durable``: the same reservation on PostgreSQL as one round trip (a PL/pgSQL function:
  advisory lock on the agent, sum the live buckets, refuse or upsert), committed with
  ``synchronous_commit = on`` — a WAL flush per decision (three counters in one statement);
- ``pg unlogged``: the same on an ``UNLOGGED`` table with ``synchronous_commit = off`` — the
  cheapest PostgreSQL can do, and no longer crash-safe either;
- ``redis PING`` and ``pg SELECT 1``: each engine's bare round trip, the floor.

Both engines run on this machine (loopback), so the figures are a floor: a network hop adds
its round-trip time to each of the last four.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from bench import _common as c

REDIS_URL = "redis://127.0.0.1:6379/0"

_FUNCTION = """
CREATE FUNCTION {schema}.reserve(k text, b bigint, oldest bigint, amount float8, lim float8)
RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE total float8;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext(k));
  SELECT coalesce(sum(c.amount), 0) INTO total FROM {table} c WHERE c.key = k AND c.bucket > oldest;
  IF total + amount > lim THEN RETURN -1; END IF;
  INSERT INTO {table} AS c (key, bucket, amount) VALUES (k, b, amount)
    ON CONFLICT (key, bucket) DO UPDATE SET amount = c.amount + excluded.amount;
  DELETE FROM {table} c WHERE c.key = k AND c.bucket <= oldest;
  RETURN total + amount;
END $$;
"""


def run() -> None:
    c.print_header("COUNTERS one decision's shared-counter update (ADR 0094)")
    batches, batch, warmup = c.sizes((20, 250, 500), (6, 100, 100))
    import redis

    from warden.behaviour import BehaviourMonitor, BehaviourSettings, parse_declared
    from warden.core.counters import Claim
    from warden.core.model import Agent, RiskTier
    from warden.storage.redis_counters import RedisCounters

    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except redis.RedisError as exc:
        print(f"  (Redis not reachable at {REDIS_URL}: {exc}; skipped)")
        return
    agent = Agent("bot", "spiffe://example.org/agent/bot", "alice", "b", RiskTier.LOW, ("t",))
    declared = parse_declared({"budgets": {"calls": 10**12, "cost": 1e15}})
    prefix = f"bench-counters-{secrets.token_hex(4)}"
    shared = RedisCounters(REDIS_URL, prefix=prefix, timeout=2.0)
    local = BehaviourMonitor(BehaviourSettings())
    remote = BehaviourMonitor(BehaviourSettings(), shared)
    for m in (local, remote):
        m.set_declared("bot", declared)
    claims = [
        Claim("calls", 60.0, 12),
        Claim("budget_calls", 3600.0, 12, 1.0, 1e12),
        Claim("budget_cost", 3600.0, 12, 1.0, 1e15),
    ]

    def decide(m: BehaviourMonitor) -> Any:
        def op(i: int) -> None:
            now = time.time()
            obs = m.observe(agent, "tsk", "support", "t", {"cost": 1}, now)
            m.outcome(agent, "t", True, {"cost": 1}, now, refund=obs.refund)

        return op

    ops: list[tuple[str, Any]] = [
        ("local", decide(local)),
        ("redis", decide(remote)),
        ("redis reserve", lambda i: shared.reserve("bot2", claims, time.time())),
    ]
    pg = _postgres_ops()
    try:
        ops += pg[0]
        ops += _yardsticks(shared)
        samples = c.interleave(ops, batches=batches, batch=batch, warmup=warmup)
        for name, _ in ops:
            print(c.summarize(samples[name]).line(name))
        base = c.summarize(samples["local"]).p50
        for name in ("redis", "pg durable", "pg unlogged"):
            if name in samples:
                extra = c.summarize(samples[name]).p50 - (base if name == "redis" else 0)
                print(f"  {name:<34} adds {extra:8.1f} µs per decision (p50)")
    finally:
        pg[1]()
        shared.close()
        _delete_prefix(prefix)


def _postgres_ops() -> tuple[list[tuple[str, Any]], Any]:
    """(ops, cleanup) for the PostgreSQL variants; none when PostgreSQL is not reachable."""
    import psycopg

    from warden.cli.cluster import postgres_unreachable, postgres_url

    base = postgres_url()
    if postgres_unreachable(base) is not None:
        print("  (PostgreSQL not reachable: its variants are skipped)")
        return [], lambda: None
    schema = f"bench_counters_{secrets.token_hex(4)}"
    admin = psycopg.connect(base, autocommit=True)
    admin.execute(f"CREATE SCHEMA {schema}")
    conns = []
    ops: list[tuple[str, Any]] = []
    for name, kind, sync in (("pg durable", "", "on"), ("pg unlogged", "UNLOGGED", "off")):
        table = f"{schema}.c_{sync}"
        admin.execute(
            f"CREATE {kind} TABLE {table} (key text, bucket bigint, amount float8, "
            "PRIMARY KEY (key, bucket))"
        )
        fn = f"{schema}.reserve_{sync}"
        admin.execute(
            _FUNCTION.format(schema=schema, table=table).replace(f"{schema}.reserve(", f"{fn}(")
        )
        conn = psycopg.connect(base, autocommit=True)
        conn.execute(f"SET synchronous_commit = {sync}")
        conns.append(conn)
        # the three counters of one decision (rate window, call and cost budgets) in one
        # statement: one round trip and one commit, as Redis does them in one script
        sql = (
            f"SELECT {fn}('bot:calls', %(r)s, %(r)s - 12, 1, 1e15), "
            f"{fn}('bot:budget_calls', %(b)s, %(b)s - 12, 1, 1e15), "
            f"{fn}('bot:budget_cost', %(b)s, %(b)s - 12, 1, 1e15)"
        )

        def op(i: int, conn: Any = conn, sql: str = sql) -> None:
            now = time.time()
            conn.execute(sql, {"r": int(now // 5), "b": int(now // 300)}).fetchone()

        ops.append((name, op))

    def cleanup() -> None:
        for conn in conns:
            conn.close()
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()

    return ops, cleanup


def _yardsticks(shared: Any) -> list[tuple[str, Any]]:
    """The bare round trip of each engine: what no counter scheme can go below."""
    import psycopg

    from warden.cli.cluster import postgres_unreachable, postgres_url

    client = shared._redis  # the same connection pool the counters use
    ops: list[tuple[str, Any]] = [("redis PING", lambda i: client.ping())]
    base = postgres_url()
    if postgres_unreachable(base) is None:
        conn = psycopg.connect(base, autocommit=True)
        ops.append(("pg SELECT 1", lambda i: conn.execute("SELECT 1").fetchone()))
    return ops


def _delete_prefix(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=f"{prefix}:*", count=500):
        client.delete(key)
    client.close()


if __name__ == "__main__":
    run()
