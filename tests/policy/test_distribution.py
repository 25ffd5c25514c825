"""Item 5: one policy revision on every replica — two real `warden serve` processes over
PostgreSQL. The database holds the published bundles and the active revision; a replica
that cannot serve the active revision within the staleness bound says so in /readyz.

Replicas share a policy folder here (as two replicas from one checkout would), so every
"B serves it" below came through the database: the revisions published directly into the
database exist in no folder, and the folder watchers poll once an hour."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.lifecycle.waiting import eventually
from warden.authz.policy_set import revision_of
from warden.cli.cluster import (
    Cluster,
    ReplicaClient,
    dev_svid,
    local_cluster,
    postgres_unreachable,
    postgres_url,
    temporary_schema,
)

pytestmark = [pytest.mark.policy, pytest.mark.postgres, pytest.mark.slow]

POLICIES = Path(__file__).resolve().parents[1] / "lifecycle" / "policies"
AGENT = "spiffe://example.org/agent"
STALENESS = 2.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    base = postgres_url()
    error = postgres_unreachable(base)
    if error is not None:
        pytest.skip(f"PostgreSQL not reachable at {base}: {error}")
    root = tmp_path_factory.mktemp("policy-dist")
    policies = root / "policies"
    shutil.copytree(POLICIES, policies)
    config = {
        "server": {
            "policies": str(policies),
            "policy_reload_interval": "1h",
            "policy_max_staleness": f"{STALENESS}s",
        },
        "replication": {"resync_interval": "1m", "heartbeat_interval": "1s"},
    }
    with (
        temporary_schema(base, "wt_policydist") as url,
        local_cluster(url, root / "data", replicas=2, config=config) as running,
    ):
        yield running


@pytest.fixture(scope="module")
def ab(cluster: Cluster) -> Iterator[tuple[ReplicaClient, ReplicaClient]]:
    a = ReplicaClient(cluster.urls[0], cluster.admin_token)
    b = ReplicaClient(cluster.urls[1], cluster.admin_token)
    a.register("reader", ["tickets.read", "data.write"])
    yield a, b
    a.close()
    b.close()


def _publish(cluster: Cluster, files: dict[str, str]) -> str:
    """Publish a bundle straight into the database, as another replica would."""
    revision = revision_of({k: v.encode() for k, v in files.items()})
    with psycopg.connect(cluster.database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO policy_bundles (revision, files, created_at, created_by) "
            "VALUES (%s, %s, %s, 'test') ON CONFLICT DO NOTHING",
            (revision, json.dumps(files, sort_keys=True), time.time()),
        )
        conn.execute(
            "UPDATE policy_active SET revision = %s, activated_at = %s, activated_by = 'test'",
            (revision, time.time()),
        )
    return revision


def _ready(r: ReplicaClient) -> dict[str, object]:
    body: dict[str, object] = r.http.get("/readyz").json()
    return body


def test_both_replicas_serve_the_active_revision(
    cluster: Cluster, ab: tuple[ReplicaClient, ReplicaClient]
) -> None:
    a, b = ab
    assert _ready(a)["policy_revision"] == _ready(b)["policy_revision"]
    text = (POLICIES / "lifecycle.cedar").read_text()
    files = {
        "lifecycle.cedar": text,
        "extra.cedar": '@id("extra") permit(principal, action == Action::"extra.tool", resource);',
    }
    revision = _publish(cluster, files)
    for replica in (a, b):
        eventually(
            lambda r=replica: _ready(r)["policy_revision"] == revision,
            "replica follows the database",
            timeout=10,
        )
    body = _ready(b)
    assert body["status"] == "ready"
    assert body["policy"] == {
        **body["policy"],
        "serving": revision,
        "current": revision,
        "stale": False,
    }  # type: ignore[dict-item]
    # every decision record names the revision it was decided with
    task = b.start_task(dev_svid(cluster.data_dir, "reader"), "tickets.read")
    assert b.allowed(f"{AGENT}/reader", task["access_token"], "tickets.read") is True

    def recorded() -> bool:  # B's audit batch commits asynchronously: read it through A
        records = a.admin_get("/v1/audit?type=authz.decision&agent=reader&limit=1000")["records"]
        return any(r["data"].get("policy_revision") == revision for r in records)

    eventually(recorded, "the decision on B is recorded with the revision", timeout=10)


def test_a_reload_on_a_is_served_by_b(
    cluster: Cluster, ab: tuple[ReplicaClient, ReplicaClient]
) -> None:
    a, b = ab
    revision = a.admin_post("/v1/policies/reload")["revision"]  # A's folder, published
    eventually(lambda: _ready(b)["policy_revision"] == revision, "B serves A's folder", timeout=10)


def test_a_replica_that_cannot_get_the_revision_says_so(
    cluster: Cluster, ab: tuple[ReplicaClient, ReplicaClient]
) -> None:
    a, b = ab
    serving = _ready(b)["policy_revision"]
    # a revision neither replica can load (say, written by a newer Warden)
    broken = _publish(
        cluster, {"new.cedar": "permit(principal, action, resource) when { future(1) };"}
    )
    for replica in (a, b):
        eventually(
            lambda r=replica: r.http.get("/readyz").status_code == 503,
            "stale after the bound",
            timeout=STALENESS + 8,
        )
    body = _ready(b)
    policy = body["policy"]
    assert isinstance(policy, dict)
    assert policy["stale"] is True and policy["current"] == broken and policy["serving"] == serving
    assert broken[:12] in str(policy["error"]) and "future" in str(policy["error"])
    assert body["policy_revision"] == serving  # the last good set keeps deciding
    revision = a.admin_post("/v1/policies/reload")["revision"]
    for replica in (a, b):
        eventually(
            lambda r=replica: r.http.get("/readyz").status_code == 200, "fresh again", timeout=10
        )
    assert _ready(b)["policy_revision"] == revision


def test_replay_from_the_cli_gates_on_a_threshold(
    cluster: Cluster, ab: tuple[ReplicaClient, ReplicaClient], tmp_path: Path
) -> None:
    a, _b = ab
    task = a.start_task(dev_svid(cluster.data_dir, "reader"), "tickets.read")
    for _ in range(3):
        assert a.allowed(f"{AGENT}/reader", task["access_token"], "tickets.read") is True
    candidate = tmp_path / "candidate"
    shutil.copytree(POLICIES, candidate)
    (candidate / "tighter.cedar").write_text(
        '@id("no-reads") forbid(principal, action == Action::"tickets.read", resource);\n'
    )
    command = [
        str(Path(sys.executable).parent / "warden"),
        "policies",
        "replay",
        str(candidate),
        "--since",
        "1h",
        "--url",
        a.url,
        "--data-dir",
        str(cluster.data_dir),
    ]
    gated = subprocess.run(
        [*command, "--max-allow-to-deny", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert gated.returncode == 1, gated.stdout + gated.stderr
    assert "allow→deny" in gated.stdout and "no-reads" in gated.stdout
    assert "threshold crossed" in gated.stdout
    report = subprocess.run(
        [*command, "--json"], capture_output=True, text=True, timeout=120, check=False
    )
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)["transitions"]["allow→deny"]["count"] >= 3
