"""PostgreSQL stopped and started mid-load (issue 11, items 4 and 5).

Two real replicas on a private PostgreSQL, decisions running on both. With the database down,
ending a task, revoking a credential and suspending an agent on replica A answer 202, hold on A
at once, and are written and reach replica B once the database returns. At no time does a
replica allow a credential more than ``max_staleness`` after it was revoked.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults._cluster import (
    CUT_OFF_REFUSALS,
    MAX_STALENESS,
    Load,
    PrivatePostgres,
    replicas,
    wait_for,
)

pytestmark = [pytest.mark.faults, pytest.mark.slow]


def test_revocation_during_a_database_outage(tmp_path: Path) -> None:
    pg = PrivatePostgres()
    try:
        with replicas(tmp_path, [pg.url, pg.url]) as (a, b):
            for name in ("alpha", "beta", "gamma", "delta"):
                a.register(name)
            tasks = {name: a.start_task(name) for name in ("alpha", "beta", "gamma", "delta")}
            tokens = {n: (n, t["access_token"]) for n, t in tasks.items()}
            for replica in (a, b):
                for name, (agent, token) in tokens.items():
                    wait_for(lambda r=replica, g=agent, t=token: r.decide(g, t).allowed, name)
            a.get("/v1/replica")  # A's operator cache holds the admin

            with Load([a, b], tokens) as load:
                wait_for(lambda: len(load.seen) > 40, "load running")
                pg.stop()
                revoked_at: dict[str, float] = {}

                r = a.post(f"/v1/tasks/{tasks['alpha']['task_id']}/complete", {"reason": "done"})
                assert r.status_code == 202, r.text
                assert r.json()["state"] == "applied_locally_pending_write"
                revoked_at["alpha"] = load_time()

                r = a.http.post(
                    "/oauth2/revoke", data={"token": tasks["beta"]["access_token"]}, headers=a.admin
                )
                assert r.status_code == 202, r.text
                revoked_at["beta"] = load_time()

                r = a.post("/v1/agents/gamma/suspend", {"reason": "outage kill switch"})
                assert r.status_code == 202, r.text
                revoked_at["gamma"] = load_time()

                # in force on A at once: its hot state says so, whatever the database
                here = a.get("/v1/replica/agents/gamma")
                assert here["status"] == "suspended" and here["active_tasks"] == 0
                for name in ("alpha", "beta", "gamma"):
                    assert not a.decide(*tokens[name]).allowed
                assert (tmp_path / "replica-0" / "outage-journal.jsonl").is_file()

                # both replicas go stale, then refuse every agent decision and say why
                for replica in (a, b):
                    wait_for(lambda r=replica: r.ready().status_code == 503, "stale /readyz")
                body = b.ready().json()
                assert body["checks"]["state_fresh"] is False
                assert body["state"]["stale"] and body["state"]["age"] > MAX_STALENESS
                assert "state_stale" in body["reasons"]  # beside audit_unavailable, if that holds
                assert b.decide(*tokens["delta"]).reason in CUT_OFF_REFUSALS

                restarted = load_time()
                pg.start()
                recovery = {
                    "ready": max(
                        wait_for(lambda r=rep: r.ready().status_code == 200, "ready again")
                        for rep in (a, b)
                    )
                }
                # the journal is replayed: B denies as revoked (not stale); the rows are written
                recovery["replayed"] = wait_for(
                    lambda: a.get("/v1/replica")["outage_journal"]["pending"] == 0, "replayed"
                )
                written = load_time()  # the journaled changes are in the database from here
                for name in ("alpha", "beta", "gamma"):
                    wait_for(
                        lambda n=name: b.decide(*tokens[n]).revoked,
                        f"{name} denied on B as revoked",
                    )
                wait_for(lambda: b.decide(*tokens["delta"]).allowed, "delta allowed again on B")
                recovery["converged"] = load_time() - restarted

            # 0 stale allows: A never allowed a credential after it accepted its revocation; B,
            # which cannot know of it before A's journal is written, never allowed it later than
            # max_staleness after that write (while the database was down it was stale)
            for name, at in revoked_at.items():
                assert load.allows(0, name, sent_after=at) == []
                assert load.allows(1, name, sent_after=max(at, written) + MAX_STALENESS) == []
            assert b.get(f"/v1/tasks/{tasks['alpha']['task_id']}")["status"] == "completed"
            assert b.get("/v1/replica/agents/gamma")["status"] == "suspended"
            audit = b.get("/v1/audit?type=task.completed")
            assert any(e.get("task_id") == tasks["alpha"]["task_id"] for e in audit["records"])
            print(f"recovery after PostgreSQL restart: {recovery}")  # noqa: T201  (README figures)
    finally:
        pg.close()


def load_time() -> float:
    import time

    return time.monotonic()
