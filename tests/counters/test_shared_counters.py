"""Budgets and deny streaks hold across replicas (issue 11 item 6, ADR 0094): two real
``warden serve`` replicas on the machine's PostgreSQL (a schema of their own) share their
counters through the machine's Redis (a key prefix of their own, deleted afterwards — the
shared Redis is never flushed). A counter backend that stops answering refuses decisions with
``counters_unavailable`` and makes ``/readyz`` say so; when it answers again, so does Warden."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import under_ci
from tests.lifecycle.tcp_proxy import TCPProxy
from tests.lifecycle.waiting import eventually
from warden.cli.cluster import (
    Cluster,
    ReplicaClient,
    dev_svid,
    local_cluster,
    postgres_unreachable,
    postgres_url,
    temporary_schema,
)
from warden.core.reasons import CODES

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

POLICIES = Path(__file__).parents[1] / "lifecycle" / "policies"
AGENT = "spiffe://example.org/agent"
REDIS = ("127.0.0.1", 6379)
DENY_STREAK = 4


def _redis() -> Any:
    import redis

    client = redis.Redis(*REDIS, socket_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        message = f"redis is not reachable at {REDIS[0]}:{REDIS[1]}: {exc}"
        if under_ci():
            pytest.fail(message)
        pytest.skip(message)
    return client


@pytest.fixture(scope="module")
def prefix() -> Iterator[str]:
    client = _redis()
    name = f"wt-counters-{secrets.token_hex(6)}"
    yield name
    for key in client.scan_iter(match=f"{name}:*", count=500):
        client.delete(key)
    client.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, prefix: str) -> Iterator[Cluster]:
    base = postgres_url()
    error = postgres_unreachable(base)
    if error is not None:
        pytest.skip(f"PostgreSQL not reachable at {base}: {error}")
    root = tmp_path_factory.mktemp("counters")
    policies = root / "policies"
    shutil.copytree(POLICIES, policies)
    config = {
        "server": {"policies": str(policies), "policy_reload_interval": "1h"},
        "replication": {"resync_interval": "1m", "heartbeat_interval": "1s"},
        "counters": {"url": f"redis://{REDIS[0]}:{REDIS[1]}/0", "prefix": prefix},
        "behaviour": {"deny_streak": DENY_STREAK, "scope_creep": 1000},
    }
    with (
        temporary_schema(base, "wt_counters") as url,
        local_cluster(url, root / "data", replicas=2, config=config) as running,
    ):
        yield running


@pytest.fixture(scope="module")
def ab(cluster: Cluster) -> Iterator[tuple[ReplicaClient, ReplicaClient]]:
    a = ReplicaClient(cluster.urls[0], cluster.admin_token)
    b = ReplicaClient(cluster.urls[1], cluster.admin_token)
    yield a, b
    a.close()
    b.close()


def _decide(on: ReplicaClient, agent: str, token: str, tool: str) -> dict[str, Any]:
    body = {
        "subject": {"type": "agent", "id": f"{AGENT}/{agent}", "properties": {"token": token}},
        "action": {"name": "tools/call"},
        "resource": {"type": "tool", "id": tool},
        "context": {},
    }
    r = on.http.post("/access/v1/evaluation", json=body)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    assert out["context"]["reason"] in CODES, out  # one of the documented stable codes
    return out


def _declare(on: ReplicaClient, other: ReplicaClient, agent: str, baseline: dict[str, Any]) -> None:
    r = on.http.put(f"/v1/agents/{agent}/baseline", json=baseline, headers=on.admin)
    assert r.status_code == 200, r.text
    # declared through one replica, it reaches the other's monitor through the change feed
    eventually(
        lambda: other.admin_get(f"/v1/agents/{agent}/baseline")["declared"] == baseline,
        "the budget known on the other replica",
    )


def test_a_call_budget_holds_across_both_replicas(
    cluster: Cluster, ab: tuple[ReplicaClient, ReplicaClient]
) -> None:
    a, b = ab
    a.register("budgeted", ["tickets.read"])
    _declare(a, b, "budgeted", {"budgets": {"calls": 5}})
    token = a.start_task(dev_svid(cluster.data_dir, "budgeted"), "tickets.read")["access_token"]
    outcomes = [_decide((a, b)[i % 2], "budgeted", token, "tickets.read") for i in range(12)]
    allowed = [o for o in outcomes if o["decision"] is True]
    refused = [o["context"]["reason"] for o in outcomes if o["decision"] is False]
    # per replica this agent would get 5 on each (10 in all); shared, it gets 5
    assert len(allowed) == 5
    assert refused == ["budget_exceeded"] * 7


def test_a_deny_streak_escalates_on_denies_spread_over_both_replicas(
    cluster: Cluster, ab: tuple[ReplicaClient, ReplicaClient]
) -> None:
    a, b = ab
    a.register("streaky", ["tickets.read", "data.read"])
    token = a.start_task(dev_svid(cluster.data_dir, "streaky"), "tickets.read")["access_token"]
    # DENY_STREAK denies, alternating: each replica alone saw only half of them
    for i in range(DENY_STREAK):
        reason = _decide((a, b)[i % 2], "streaky", token, "data.read")["context"]["reason"]
        assert reason == "out_of_scope"

    def streak_found() -> bool:
        found = a.admin_get("/v1/findings?agent=streaky")["findings"]
        return any(
            f["detector"] == "deny_streak" and f["facts"]["deny_streak"] == DENY_STREAK
            for f in found
        )

    eventually(streak_found, "a deny_streak finding for denies on both replicas", timeout=20)


def test_unreachable_counters_refuse_with_counters_unavailable(tmp_path: Path) -> None:
    base = postgres_url()
    error = postgres_unreachable(base)
    if error is not None:
        pytest.skip(f"PostgreSQL not reachable at {base}: {error}")
    client = _redis()
    prefix = f"wt-counters-{secrets.token_hex(6)}"
    proxy = TCPProxy(REDIS)  # Redis as this server sees it; the shared Redis is never touched
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES, policies)
    config = {
        "server": {"policies": str(policies)},
        "counters": {"url": f"redis://127.0.0.1:{proxy.port}/0", "prefix": prefix},
    }
    try:
        with (
            temporary_schema(base, "wt_counters") as url,
            local_cluster(url, tmp_path / "data", replicas=1, config=config) as running,
            ReplicaClient(running.urls[0], running.admin_token) as one,
        ):
            one.register("cut", ["tickets.read"])
            token = one.start_task(dev_svid(running.data_dir, "cut"), "tickets.read")[
                "access_token"
            ]
            assert _decide(one, "cut", token, "tickets.read")["decision"] is True
            proxy.down()
            try:
                refused = _decide(one, "cut", token, "tickets.read")
                ready = httpx.get(f"{running.urls[0]}/readyz", timeout=10)
            finally:
                proxy.up()
            assert refused["decision"] is False
            assert refused["context"]["reason"] == "counters_unavailable"
            assert ready.status_code == 503
            assert ready.json()["checks"]["counters"].startswith("counters_unavailable")
            assert "counters_unavailable" in ready.json()["reasons"]
            eventually(
                lambda: httpx.get(f"{running.urls[0]}/readyz", timeout=10).status_code == 200,
                "ready again once the counters answer",
                timeout=20,
            )
            assert _decide(one, "cut", token, "tickets.read")["decision"] is True
    finally:
        proxy.close()
        for key in client.scan_iter(match=f"{prefix}:*", count=500):
            client.delete(key)
        client.close()
