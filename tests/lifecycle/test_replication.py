"""Replication inside one process: the SQLite change log, the periodic resync that repairs a
missed notification, and a resync that never brings back a task ended while it ran."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.lifecycle.conftest import POLICIES
from tests.lifecycle.waiting import eventually
from warden.api.oauth_requests import exchange
from warden.authz.authzen import ActionInput, EntityInput, EvaluationInput
from warden.bootstrap import Warden
from warden.config import Settings, TrustDomainConfig
from warden.core.model import TaskStatus
from warden.service.state import HotState, read_snapshot
from warden.tokens.svid import DevTrustDomain

pytestmark = pytest.mark.lifecycle

SCOPE = "tickets.read"


class Pair:
    """Two Warden replicas on one database, in this process."""

    def __init__(self, tmp: Path, database_url: str | None, **settings: Any) -> None:
        self.trust = DevTrustDomain.load_or_create("example.org", tmp / "trust")
        common = {
            "policies_dir": POLICIES,
            "trust_domains": (TrustDomainConfig("example.org", self.trust.bundle_path),),
            "issuer": "http://warden.test",
            "database_url": database_url,
            **settings,
        }
        # one data dir: the replicas share the key-encryption key
        self.a = Warden(Settings(data_dir=tmp / "data", **common))
        self.b = Warden(Settings(data_dir=tmp / "data", **common))
        self.a.start()
        self.b.start()
        self.agent = self.a.agents.register(
            {
                "name": "bot",
                "owner": "o@example.com",
                "purpose": "p",
                "entitlements": [SCOPE],
                "groups": ["support"],
            },
            "test",
        )

    def start_task(self) -> dict[str, Any]:
        svid = self.trust.mint(self.agent.spiffe_id, "warden")
        return exchange(
            self.a.tasks,
            self.a.credentials,
            {
                "grant_type": ["urn:ietf:params:oauth:grant-type:token-exchange"],
                "subject_token": [svid],
                "subject_token_type": ["urn:ietf:params:oauth:token-type:jwt"],
                "scope": [SCOPE],
                "authorization_details": ['[{"type":"agent_task","purpose":"p"}]'],
            },
        )

    def allowed(self, w: Warden, token: str) -> bool:
        ev = EvaluationInput(
            subject=EntityInput("agent", self.agent.spiffe_id, {"token": token}),
            action=ActionInput("tools/call"),
            resource=EntityInput("tool", SCOPE),
            context={},
        )
        return w.decisions.evaluate(ev).allowed

    def close(self) -> None:
        self.a.close()
        self.b.close()


@pytest.fixture
def sqlite_pair(tmp_path: Path) -> Iterator[Pair]:
    pair = Pair(tmp_path, None, resync_interval=3600)
    yield pair
    pair.close()


def test_sqlite_replicas_hear_each_other_through_the_change_log(sqlite_pair: Pair) -> None:
    p = sqlite_pair
    task = p.start_task()
    assert p.allowed(p.b, task["access_token"]) is True
    p.a.tasks.end(task["task_id"], TaskStatus.REVOKED, actor="test")
    eventually(lambda: task["task_id"] in p.b.state.ended, "B applies the change")
    assert p.allowed(p.b, task["access_token"]) is False
    p.a.agents.suspend("bot", "test")
    eventually(
        lambda: p.b.state.agents_by_name["bot"].status.value == "suspended", "B sees suspension"
    )


@pytest.fixture
def pg_pair(tmp_path: Path) -> Iterator[Pair]:
    from warden.cli.cluster import postgres_unreachable, postgres_url, temporary_schema

    base = postgres_url()
    error = postgres_unreachable(base)
    if error is not None:
        pytest.skip(f"PostgreSQL not reachable at {base}: {error}")
    with temporary_schema(base, "wt_resync") as url:
        pair = Pair(tmp_path, url, resync_interval=0.5, heartbeat_interval=0.1)
        try:
            yield pair
        finally:
            pair.close()


@pytest.mark.postgres
def test_the_periodic_resync_repairs_a_change_nobody_announced(pg_pair: Pair) -> None:
    p = pg_pair
    task = p.start_task()
    assert p.allowed(p.b, task["access_token"]) is True
    # as if replica A crashed after committing and before notifying
    p.a.store.end_task_tree(task["task_id"], TaskStatus.REVOKED, ended_at=time.time(), reason="x")
    eventually(lambda: task["task_id"] not in p.b.state.tasks, "B's resync drops the task")
    assert p.allowed(p.b, task["access_token"]) is False


def test_a_resync_never_resurrects_a_task_that_ended_during_it(sqlite_pair: Pair) -> None:
    p = sqlite_pair
    task = p.start_task()
    state: HotState = p.b.state
    p.allowed(p.b, task["access_token"])  # B learns the task
    state.begin_resync()
    stale = read_snapshot(p.b.store, now=time.time())  # read before the task ends
    state.end_task(task["task_id"], {}, announce=False)  # ... which happens meanwhile
    state.install(stale)
    assert task["task_id"] not in state.tasks
    assert p.allowed(p.b, task["access_token"]) is False


def test_a_started_replica_is_listed_before_it_serves(tmp_path: Path) -> None:
    """``start()`` returns with this replica's heartbeat written: a replica that answers
    ``/readyz`` is in ``/v1/replicas`` (the kill switch checks every listed replica)."""
    trust = DevTrustDomain.load_or_create("example.org", tmp_path / "trust")
    w = Warden(
        Settings(
            data_dir=tmp_path / "data",
            policies_dir=POLICIES,
            trust_domains=(TrustDomainConfig("example.org", trust.bundle_path),),
            advertise_url="http://127.0.0.1:9",
        )
    )
    try:
        w.start()
        assert [r.url for r in w.replication.replicas()] == ["http://127.0.0.1:9"]
    finally:
        w.close()
