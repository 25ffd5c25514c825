"""Just-in-time credentials (leases) against the machine's real PostgreSQL, and the JWT lease.

The lease roles get SCRAM verifiers, but this PostgreSQL trusts loopback connections, so the
tests prove access by the role's existence and grants (which is what revocation removes), not by
the password.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jwt
import psycopg
import pytest
from psycopg import sql

from tests.lifecycle.conftest import LifecycleWorld, Target, WorldFactory
from tests.lifecycle.tcp_proxy import TCPProxy
from warden.core.model import Lease, LeaseKind, LeaseState
from warden.errors import InvalidParameterError

pytestmark = [pytest.mark.lifecycle, pytest.mark.postgres]

SCOPE = "tickets.read lease.reporting lease.billing"
BILLING = "https://billing.example.com"


def _world(make_world: WorldFactory, target: Target, **lease_overrides: Any) -> LifecycleWorld:
    lw = make_world(
        lease_postgres=target.config(**lease_overrides),
        lease_services={"billing": {"audience": BILLING, "scope": "lease.billing"}},
    )
    lw.register_all()
    return lw


@pytest.fixture
def lw(make_world: WorldFactory, target: Target) -> LifecycleWorld:
    return _world(make_world, target)


def _lease(lw: LifecycleWorld, task: dict[str, Any], body: dict[str, Any]) -> Any:
    return lw.client.post(
        f"/v1/tasks/{task['task_id']}/leases",
        json=body,
        headers={"Authorization": f"Bearer {task['access_token']}"},
    )


def _pg_lease(lw: LifecycleWorld, task: dict[str, Any]) -> dict[str, Any]:
    r = _lease(lw, task, {"kind": "postgres", "target": "reporting"})
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def test_a_lease_can_do_what_its_template_grants_and_nothing_else(
    lw: LifecycleWorld, target: Target
) -> None:
    task = lw.start("worker", SCOPE)
    lease = _pg_lease(lw, task)
    assert lease["username"].startswith(target.prefix)
    assert lease["state"] == "active"
    assert {"host", "port", "database", "password", "expires_at"} <= set(lease)
    with target.connect_as(lease) as conn:
        rows = conn.execute(
            sql.SQL("SELECT item FROM {}.orders ORDER BY id").format(sql.Identifier(target.schema))
        ).fetchall()
        assert rows == [("tea",), ("cake",)]
        for forbidden in (
            "SELECT * FROM {}.secrets",
            "INSERT INTO {}.orders VALUES (3, 'x')",
            "CREATE TABLE {}.mine (id int)",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql.SQL(forbidden).format(sql.Identifier(target.schema)))
    with target.admin() as admin:
        role = admin.execute(
            "SELECT r.rolvaliduntil, r.rolconnlimit, r.rolsuper, r.rolcreaterole, a.rolpassword"
            " FROM pg_roles r JOIN pg_authid a ON a.oid = r.oid WHERE r.rolname = %s",
            (lease["username"],),
        ).fetchone()
    assert role is not None
    valid_until, limit, superuser, createrole, stored = role
    assert valid_until.timestamp() <= task["task_expires_at"]
    assert limit == 5 and not superuser and not createrole
    # a SCRAM verifier computed by Warden: the password itself never reached the server
    assert stored.startswith("SCRAM-SHA-256$4096:")
    assert lease["password"] not in stored
    created = lw.audit("lease.created")[-1]
    assert created["data"]["role"] == lease["username"]
    assert lease["password"] not in str(lw.audit())  # never in the audit trail
    listed = lw.client.get(f"/v1/tasks/{task['task_id']}/leases", headers=lw.admin).json()
    assert [x["state"] for x in listed["leases"]] == ["active"]
    assert "password" not in listed["leases"][0]


def _complete(lw: LifecycleWorld, task: dict[str, Any]) -> dict[str, Any]:
    r = lw.client.post(
        f"/v1/tasks/{task['task_id']}/complete",
        headers={"Authorization": f"Bearer {task['access_token']}"},
    )
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def test_completing_the_task_ends_the_lease_and_its_open_sessions(
    lw: LifecycleWorld, target: Target
) -> None:
    task = lw.start("worker", SCOPE)
    lease = _pg_lease(lw, task)
    session = target.connect_as(lease)
    session.execute("SELECT 1")
    body = _complete(lw, task)
    assert body["leases"] == {"revoked": [lease["id"]], "pending": []}
    with pytest.raises(psycopg.OperationalError):
        session.execute("SELECT 1")  # terminated
    session.close()
    with pytest.raises(psycopg.OperationalError, match="does not exist"):
        target.connect_as(lease)
    assert target.roles() == []
    revoked = lw.audit("lease.revoked")[-1]
    assert revoked["data"]["reason"] == "task completed"


EndTask = Callable[[LifecycleWorld, dict[str, Any]], None]


def _fail(lw: LifecycleWorld, task: dict[str, Any]) -> None:
    lw.client.post(f"/v1/tasks/{task['task_id']}/fail", headers=lw.admin)


def _revoke(lw: LifecycleWorld, task: dict[str, Any]) -> None:
    lw.client.post(f"/v1/tasks/{task['task_id']}/revoke", headers=lw.admin)


def _kill(lw: LifecycleWorld, task: dict[str, Any]) -> None:
    r = lw.client.post("/v1/agents/worker/suspend", json={}, headers=lw.admin)
    assert r.json()["leases"]["pending"] == []


def _expire(lw: LifecycleWorld, task: dict[str, Any]) -> None:
    lw.clock.advance(3601)
    lw.warden.tasks.sweep_expired()


def _parent_ends(lw: LifecycleWorld, task: dict[str, Any]) -> None:
    lw.client.post(f"/v1/tasks/{task['parent']}/complete", headers=lw.admin)


@pytest.mark.parametrize("end", [_fail, _revoke, _kill, _expire, _parent_ends])
def test_every_way_a_task_ends_drops_the_role(
    lw: LifecycleWorld, target: Target, end: EndTask
) -> None:
    if end is _parent_ends:
        parent = lw.start("planner", SCOPE)
        child = lw.delegate("worker", parent["access_token"], SCOPE).json()
        task = {**child, "parent": parent["task_id"]}
    else:
        task = lw.start("worker", SCOPE)
    lease = _pg_lease(lw, task)
    assert target.roles() == [lease["username"]]
    end(lw, task)
    assert target.roles() == []
    state = lw.warden.leases.fetch(lease["id"]).state
    assert state is LeaseState.REVOKED
    if end is _parent_ends:  # the lease's records name the whole chain
        revoked = lw.audit("lease.revoked")[-1]
        assert revoked["data"]["chain"] == [lw.spiffe("planner"), lw.spiffe("worker")]


def test_bad_lease_requests_are_refused_and_recorded(lw: LifecycleWorld, target: Target) -> None:
    task = lw.start("worker", SCOPE)
    unknown = _lease(lw, task, {"kind": "postgres", "target": "nope"})
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "lease_target_unknown"
    bad_kind = _lease(lw, task, {"kind": "ftp", "target": "reporting"})
    assert bad_kind.status_code == 400
    no_scope = lw.start("worker", "tickets.read")
    forbidden = _lease(lw, no_scope, {"kind": "postgres", "target": "reporting"})
    assert forbidden.status_code == 403
    other = lw.start("worker", SCOPE)
    foreign = lw.client.post(
        f"/v1/tasks/{other['task_id']}/leases",
        json={"kind": "postgres", "target": "reporting"},
        headers={"Authorization": f"Bearer {task['access_token']}"},
    )
    assert foreign.status_code == 403  # a credential only acts on its own task
    _complete(lw, task)
    finished = lw.client.post(
        f"/v1/tasks/{task['task_id']}/leases",
        json={"kind": "postgres", "target": "reporting"},
        headers=lw.admin,
    )
    assert finished.status_code == 409
    assert finished.json()["error"]["code"] == "task_not_active"
    reasons = [r["data"]["reason"] for r in lw.audit("lease.refused")]
    assert reasons == ["unknown", "scope", "task_not_active"]
    assert target.roles() == []


def test_injection_in_template_names_cannot_run_sql(
    make_world: WorldFactory, target: Target
) -> None:
    evil = f'orders"; DROP TABLE {target.schema}.victim; --'
    lw = _world(
        make_world,
        target,
        grants=[
            # a [schema, name] pair: the name may hold anything, dots and quotes included
            {"privileges": ["SELECT"], "on": "table", "objects": [[target.schema, evil]]},
        ],
        member_of=['pg_read_all_data"; DROP TABLE victim; --'],
    )
    task = lw.start("worker", SCOPE)
    r = _lease(lw, task, {"kind": "postgres", "target": "reporting"})
    assert r.status_code == 502
    assert r.json()["error"]["code"] == "lease_failed"
    with target.admin() as admin:
        assert admin.execute("SELECT to_regclass(%s)", (f"{target.schema}.victim",)).fetchone() == (
            f"{target.schema}.victim",
        )
    assert target.roles() == []  # one transaction: nothing half-made is left behind
    (lease,) = lw.warden.store.list_leases(task_id=task["task_id"])
    assert lease.state is LeaseState.FAILED
    assert "does not exist" in (lease.last_error or "")
    assert lw.audit("lease.failed")[-1]["data"]["lease"] == lease.id


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("role_prefix", 'x"; DROP ROLE postgres; --'),
        ("grants", [{"privileges": ["SELECT; DROP TABLE x"], "on": "table", "objects": ["t"]}]),
        ("grants", [{"privileges": ["SELECT"], "on": "table; DROP", "objects": ["t"]}]),
        ("grants", [{"privileges": ["SELECT"], "on": "table", "objects": ["a.b.c"]}]),
        ("dsn", "mysql://nope"),
    ],
)
def test_bad_templates_are_refused_at_start(
    make_world: WorldFactory, target: Target, field: str, value: Any
) -> None:
    with pytest.raises(InvalidParameterError, match=f"leases.postgres.reporting.{field}"):
        make_world(lease_postgres=target.config(**{field: value}))


def test_the_database_going_away_mid_revocation_is_retried_never_reported_done(
    make_world: WorldFactory, target: Target
) -> None:
    proxy = TCPProxy(("127.0.0.1", 5432))
    try:
        dsn = target.url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
        lw = _world(make_world, target, dsn=dsn)
        task = lw.start("worker", SCOPE)
        lease = _pg_lease(lw, task)
        proxy.down()
        body = _complete(lw, task)
        assert body["status"] == "completed"
        assert body["leases"] == {"revoked": [], "pending": [lease["id"]]}
        stored = lw.warden.leases.fetch(lease["id"])
        assert stored.state is LeaseState.REVOKING
        assert stored.last_error
        assert target.roles() == [lease["username"]]  # honestly still there
        assert not lw.audit("lease.revoked")
        assert lw.audit("lease.revoke_failed")[-1]["data"]["lease"] == lease["id"]
        report = lw.warden.leases.reap()  # still down: still pending
        assert report.pending == 1 and report.revoked == 0
        proxy.up()
        report = lw.warden.leases.reap()
        assert report.revoked == 1
        assert target.roles() == []
        assert lw.warden.leases.fetch(lease["id"]).state is LeaseState.REVOKED
        assert lw.audit("lease.revoked")[-1]["data"]["reason"] == "task ended"
    finally:
        proxy.close()


def test_the_reaper_removes_what_a_crash_left_behind(
    make_world: WorldFactory, target: Target
) -> None:
    orphan = f"{target.prefix}orphan"
    stuck = f"{target.prefix}stuck"
    with target.admin() as admin:
        for role in (orphan, stuck):
            admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    lw = _world(make_world, target)
    task = lw.start("worker", SCOPE)
    # a lease recorded by a replica that crashed before it finished creating the role
    lw.warden.store.create_lease(
        Lease(
            id="lease_stuck",
            task_id=task["task_id"],
            agent_name="worker",
            kind=LeaseKind.POSTGRES,
            target="reporting",
            principal=stuck,
            created_at=lw.clock.now() - 120,
            expires_at=lw.clock.now() + 600,
        )
    )
    live = _pg_lease(lw, task)
    lw.warden.leases.reap()  # (the start-up pass may already have taken the orphan)
    assert target.roles() == [live["username"]]  # the live lease is untouched
    assert lw.warden.leases.fetch("lease_stuck").state is LeaseState.REVOKED
    assert orphan in {r["data"]["role"] for r in lw.audit("lease.orphan_removed")}


def test_the_reaper_runs_at_start_up(make_world: WorldFactory, target: Target) -> None:
    orphan = f"{target.prefix}leftover"
    with target.admin() as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(orphan)))
    _world(make_world, target)  # starting Warden runs a first reconciliation pass
    deadline = time.monotonic() + 10
    while target.roles() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert target.roles() == []


def test_a_jwt_lease_is_bound_to_one_service_and_dies_with_the_task(
    lw: LifecycleWorld, target: Target
) -> None:
    task = lw.start("worker", SCOPE)
    r = _lease(lw, task, {"kind": "jwt", "audience": "billing", "ttl": 120})
    assert r.status_code == 201, r.text
    lease = r.json()
    token = lease["token"]
    keys = {k["kid"]: k for k in lw.client.get("/.well-known/jwks.json").json()["keys"]}
    header = jwt.get_unverified_header(token)
    key = jwt.PyJWK(keys[header["kid"]]).key
    claims = jwt.decode(
        token, key, algorithms=["EdDSA"], audience=BILLING, issuer="http://testserver"
    )
    assert claims["sub"] == lw.spiffe("worker")
    assert claims["task"] == task["task_id"]
    assert claims["lease"] == lease["id"]
    assert claims["exp"] - claims["iat"] <= 120
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(token, key, algorithms=["EdDSA"], audience="https://other.example.com")
    # it is not a task credential: the PDP refuses it
    assert lw.decide(token, lw.spiffe("worker"), "tickets.read")["decision"] is False
    operator = lw.admin
    active = lw.client.post("/oauth2/introspect", data={"token": token}, headers=operator).json()
    assert active["active"] is True
    assert active["aud"] == BILLING
    assert active["warden"]["lease"] == lease["id"]
    _complete(lw, task)
    assert lw.client.post("/oauth2/introspect", data={"token": token}, headers=operator).json() == {
        "active": False
    }
    assert lw.warden.leases.fetch(lease["id"]).state is LeaseState.REVOKED
    unknown = _lease(lw, lw.start("worker", SCOPE), {"kind": "jwt", "audience": "nope"})
    assert unknown.status_code == 400
