"""Two real `warden serve` replicas on the machine's PostgreSQL behave as one: what happens on
A (revocation, task end, suspension, policy reload, key rotation) reaches B's memory through
LISTEN/NOTIFY, and DPoP proofs cannot be replayed from one to the other.

The replicas resync only once a minute here, so every "B sees it" below came through the
notification channel (or B's read-through of the database), not the safety-net resync.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.lifecycle.dpop import ProofKey
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

pytestmark = [pytest.mark.lifecycle, pytest.mark.postgres, pytest.mark.slow]

POLICIES = Path(__file__).parent / "policies"
AGENT = "spiffe://example.org/agent"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    base = postgres_url()
    error = postgres_unreachable(base)
    if error is not None:
        pytest.skip(f"PostgreSQL not reachable at {base}: {error}")
    root = tmp_path_factory.mktemp("replicas")
    policies = root / "policies"
    shutil.copytree(POLICIES, policies)
    config = {
        "server": {"policies": str(policies), "policy_reload_interval": "1h"},
        "replication": {"resync_interval": "1m", "heartbeat_interval": "1s"},
    }
    with (
        temporary_schema(base, "wt_replicas") as url,
        local_cluster(url, root / "data", replicas=2, config=config) as running,
    ):
        yield running


@pytest.fixture(scope="module")
def ab(cluster: Cluster) -> Iterator[tuple[ReplicaClient, ReplicaClient]]:
    a = ReplicaClient(cluster.urls[0], cluster.admin_token)
    b = ReplicaClient(cluster.urls[1], cluster.admin_token)
    for name in ("alpha", "beta", "gamma", "delta", "omega"):
        a.register(name, ["tickets.read", "data.read", "data.write"])
    yield a, b
    a.close()
    b.close()


def _task(cluster: Cluster, on: ReplicaClient, agent: str, scope: str = "tickets.read") -> Any:
    return on.start_task(dev_svid(cluster.data_dir, agent), scope)


def test_revoke_on_a_is_denied_on_b(cluster: Cluster, ab: tuple[ReplicaClient, ...]) -> None:
    a, b = ab
    task = _task(cluster, a, "alpha")
    token = task["access_token"]
    # B never saw the task start: it reads it from the database on first use
    assert b.allowed(f"{AGENT}/alpha", token, "tickets.read") is True
    a.admin_post(f"/v1/tasks/{task['task_id']}/revoke", {"reason": "test"})
    eventually(lambda: not b.allowed(f"{AGENT}/alpha", token, "tickets.read"), "deny on B")
    assert b.admin_get("/v1/replica")["changes_applied"] >= 1
    metrics = b.http.get("/metrics").text
    assert "warden_replication_connected 1.0" in metrics
    assert 'warden_replication{what="changes_applied"}' in metrics


def test_single_credential_revocation_reaches_b(
    cluster: Cluster, ab: tuple[ReplicaClient, ...]
) -> None:
    a, b = ab
    task = _task(cluster, a, "beta")
    token = task["access_token"]
    assert b.allowed(f"{AGENT}/beta", token, "tickets.read") is True
    r = a.http.post("/oauth2/revoke", data={"token": token}, headers=a.admin)
    assert r.status_code == 200
    eventually(lambda: not b.allowed(f"{AGENT}/beta", token, "tickets.read"), "deny on B")


def test_suspension_on_a_kills_tasks_held_by_b(
    cluster: Cluster, ab: tuple[ReplicaClient, ...]
) -> None:
    a, b = ab
    task = _task(cluster, b, "gamma")  # started on B: A has never seen it
    token = task["access_token"]
    assert b.allowed(f"{AGENT}/gamma", token, "tickets.read") is True
    body = a.admin_post("/v1/agents/gamma/suspend", {"reason": "kill switch test"})
    assert body["tasks_ended"] == 1
    eventually(lambda: not b.allowed(f"{AGENT}/gamma", token, "tickets.read"), "deny on B")
    live = b.admin_get("/v1/replica/agents/gamma")
    assert live == {**live, "status": "suspended", "active_tasks": 0}
    refused = b.http.post(
        "/oauth2/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": dev_svid(cluster.data_dir, "gamma"),
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "scope": "tickets.read",
            "authorization_details": '[{"type":"agent_task","purpose":"again"}]',
        },
    )
    assert refused.status_code == 400


def test_the_cli_reports_the_kill_reaching_every_replica(
    cluster: Cluster, ab: tuple[ReplicaClient, ...]
) -> None:
    from typer.testing import CliRunner

    from warden.cli.main import app

    a, b = ab
    task = _task(cluster, b, "delta")
    assert b.allowed(f"{AGENT}/delta", task["access_token"], "tickets.read")
    result = CliRunner().invoke(
        app,
        ["agents", "suspend", "delta", "--url", a.url, "--data-dir", str(cluster.data_dir)],
    )
    assert result.exit_code == 0, result.output
    assert "1 task ended" in result.output
    assert "cascade on the replica that ran it" in result.output
    assert "seen by 2/2 replicas within" in result.output
    for url in cluster.urls:
        assert url in result.output


def test_policy_reload_on_a_reaches_b(cluster: Cluster, ab: tuple[ReplicaClient, ...]) -> None:
    a, b = ab
    policies = cluster.data_dir.parent / "policies"
    before = b.http.get("/readyz").json()["policy_revision"]
    with (policies / "extra.cedar").open("w") as fh:
        fh.write('@id("extra")\npermit (principal, action == Action::"extra.tool", resource);\n')
    try:
        revision = a.admin_post("/v1/policies/reload")["revision"]
        assert revision != before
        eventually(lambda: b.http.get("/readyz").json()["policy_revision"] == revision, "B reloads")
    finally:
        (policies / "extra.cedar").unlink()
        a.admin_post("/v1/policies/reload")


def test_key_rotation_on_a_reaches_b(cluster: Cluster, ab: tuple[ReplicaClient, ...]) -> None:
    a, b = ab
    new = a.admin_post("/v1/keys/rotate")["current"]
    eventually(
        lambda: b.http.get("/.well-known/jwks.json").json()["keys"][0]["kid"] == new,
        "B publishes the new key first",
    )
    # a credential A signs with the new key is good on B, and the other way round
    task = _task(cluster, a, "omega")
    assert b.allowed(f"{AGENT}/omega", task["access_token"], "tickets.read")
    other = _task(cluster, b, "omega")
    assert a.allowed(f"{AGENT}/omega", other["access_token"], "tickets.read")


def test_a_dpop_proof_used_on_a_is_a_replay_on_b(
    cluster: Cluster, ab: tuple[ReplicaClient, ...]
) -> None:
    a, b = ab
    key = ProofKey()
    token_url = f"{a.url}/oauth2/token"
    r = a.http.post(
        "/oauth2/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": dev_svid(cluster.data_dir, "alpha"),
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "scope": "tickets.read",
            "authorization_details": '[{"type":"agent_task","purpose":"bound"}]',
        },
        headers={"DPoP": key.proof("POST", token_url)},
    )
    assert r.status_code == 200, r.text
    task = r.json()
    token = task["access_token"]
    http = {"method": "GET", "uri": "https://api.example.com/tickets"}
    proof = key.proof("GET", http["uri"], token=token)
    assert a.allowed(f"{AGENT}/alpha", token, "tickets.read", context={"http": http}, dpop=proof)
    assert not b.allowed(
        f"{AGENT}/alpha", token, "tickets.read", context={"http": http}, dpop=proof
    )
    fresh = key.proof("GET", http["uri"], token=token)
    assert b.allowed(f"{AGENT}/alpha", token, "tickets.read", context={"http": http}, dpop=fresh)


def test_b_recovers_when_its_listener_connection_is_cut(
    cluster: Cluster, ab: tuple[ReplicaClient, ...]
) -> None:
    a, b = ab
    channel = b.admin_get("/v1/replica")["channel"]
    resyncs = b.admin_get("/v1/replica")["resyncs"]
    with psycopg.connect(postgres_url(), autocommit=True) as admin:
        cut = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = %s",
            (f'LISTEN "{channel}"',),
        ).fetchall()
    assert len(cut) == 2  # A's and B's listeners
    # B reconnects and resyncs from the database (notifications sent meanwhile are lost)
    eventually(lambda: b.admin_get("/v1/replica")["resyncs"] > resyncs, "B resyncs")
    eventually(lambda: b.admin_get("/v1/replica")["connected"] is True, "B listens again")
    task = _task(cluster, a, "beta")
    token = task["access_token"]
    assert b.allowed(f"{AGENT}/beta", token, "tickets.read")
    a.admin_post(f"/v1/tasks/{task['task_id']}/complete")
    eventually(lambda: not b.allowed(f"{AGENT}/beta", token, "tickets.read"), "deny on B")
