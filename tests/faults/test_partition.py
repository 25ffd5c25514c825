"""A replica cut off from PostgreSQL by a TCP proxy, and a notification that never arrives
(issue 11, item 4).

Replica B reaches the database only through a proxy the test cuts. While B is partitioned, A
ends three tasks: B cannot hear it, so within ``max_staleness`` it refuses every agent decision
with ``state_stale`` and ``/readyz`` says 503 — it never allows past the bound. Healed, B
converges: the tasks are denied as ended, not as stale. A change committed without any
notification (as a replica that died between COMMIT and NOTIFY leaves it) is applied by the
freshness round within the bound.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tests.faults._cluster import (
    CUT_OFF_REFUSALS,
    MAX_STALENESS,
    Load,
    PrivatePostgres,
    Replica,
    TcpProxy,
    jti_of,
    replicas,
    wait_for,
)

pytestmark = [pytest.mark.faults, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Replica, Replica, TcpProxy, str]]:
    pg = PrivatePostgres()
    proxy = TcpProxy(pg.port)
    behind = pg.url.replace(f":{pg.port}/", f":{proxy.port}/")
    try:
        with replicas(tmp_path_factory.mktemp("partition"), [pg.url, behind]) as (a, b):
            yield a, b, proxy, pg.url
    finally:
        proxy.close()
        pg.close()


def test_a_partitioned_replica_denies_within_the_bound_and_converges(
    cluster: tuple[Replica, Replica, TcpProxy, str],
) -> None:
    a, b, proxy, _ = cluster
    names = ("one", "two", "three")
    for name in (*names, "control"):
        a.register(name)
    tasks = {name: a.start_task(name) for name in (*names, "control")}
    tokens = {n: (n, t["access_token"]) for n, t in tasks.items()}
    for name, (agent, token) in tokens.items():
        wait_for(lambda g=agent, t=token: b.decide(g, t).allowed, f"{name} allowed on B")

    with Load([b], tokens) as load:
        wait_for(lambda: len(load.seen) > 20, "load running")
        proxy.cut()
        ended_at: dict[str, float] = {}
        for name in names:
            r = a.post(f"/v1/tasks/{tasks[name]['task_id']}/complete", {"reason": "partition"})
            assert r.status_code == 200, r.text
            ended_at[name] = time.monotonic()

        wait_for(lambda: b.ready().status_code == 503, "B not ready while partitioned")
        body = b.ready().json()
        assert body["checks"]["state_fresh"] is False
        assert body["state"]["stale"] and body["state"]["age"] > MAX_STALENESS
        for name in names:
            assert b.decide(*tokens[name]).reason in CUT_OFF_REFUSALS
        partitioned_for = time.monotonic()
        wait_for(lambda: time.monotonic() - partitioned_for > 1.0, "a while partitioned")

        proxy.heal()
        healed = time.monotonic()
        converged = wait_for(lambda: b.ready().status_code == 200, "B ready after healing")
        for name in names:
            seen = b.decide(*tokens[name])
            assert seen.revoked, f"{name} on B: {seen}"
        wait_for(lambda: b.decide(*tokens["control"]).allowed, "control allowed on B again")

    # never an allow past the bound: B allowed an ended task's credential only while it could
    # not yet know, at most max_staleness after A ended it
    for name, at in ended_at.items():
        assert load.allows(0, name, sent_after=at + MAX_STALENESS) == []
    assert load.allows(0, "control", sent_after=healed)  # the load saw B recover
    print(f"B converged {converged:.2f} s after the partition healed")  # noqa: T201  (README figure)


def test_a_change_without_its_notification_is_applied_within_the_bound(
    cluster: tuple[Replica, Replica, TcpProxy, str],
) -> None:
    a, b, _, url = cluster
    a.register("quiet")
    a.register("hushed")
    revoked = a.start_task("quiet")
    suspended = a.start_task("hushed")
    for agent, task in (("quiet", revoked), ("hushed", suspended)):
        wait_for(lambda g=agent, t=task: b.decide(g, t["access_token"]).allowed, f"{agent} on B")
    # committed with no NOTIFY at all, as a replica killed between COMMIT and NOTIFY leaves it
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE credentials SET revoked_at = :now WHERE jti = :jti"),
                {"now": time.time(), "jti": jti_of(revoked["access_token"])},
            )
            conn.execute(
                sa.text(
                    "UPDATE agents SET status = 'suspended', updated_at = :now WHERE name = :n"
                ),
                {"now": time.time(), "n": "hushed"},
            )
    finally:
        engine.dispose()
    for agent, task in (("quiet", revoked), ("hushed", suspended)):
        wait_for(
            lambda g=agent, t=task: b.decide(g, t["access_token"]).revoked,
            f"{agent} denied on B without a notification",
            timeout=MAX_STALENESS * 3,
        )
    assert b.get("/v1/replica")["deny_applied"] >= 2
    assert b.get("/v1/replica/agents/hushed")["status"] == "suspended"
