"""Demo chapter: the credential lifecycle (issue 4).

On the demo server: a delegated subtask (the chain in `act`, a child that may not widen its
parent's scope) and a DPoP-bound call (a replayed or missing proof is refused). Then two more
replicas on the machine's PostgreSQL (in a throw-away schema): a just-in-time database login
that works while its task runs and stops working when the task completes, and a kill switch
pulled on one replica that the other enforces at once. When PostgreSQL is not reachable those
steps say so and are skipped.
"""

from __future__ import annotations

import atexit
import json
import secrets
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from warden.cli.dev import DEV_TRUST_DOMAIN, JWT_TOKEN_TYPE, TOKEN_EXCHANGE, dev_trust_dir
from warden.demo.story import Demo, Step, StepError, jwt_claims

ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105 - a URN
HELPER = {
    "name": "ledger-bot",
    "owner": "bob@example.com",
    "purpose": "look up invoices for the support agent",
    "risk_tier": "medium",
    "entitlements": ["tickets.read"],
    "groups": ["support"],
}
API_URI = "https://api.example.com/tickets/T-1042"


def _svid(d: Demo, spiffe_id: str) -> str:
    from warden.tokens.svid import DevTrustDomain

    domain = DevTrustDomain.load(DEV_TRUST_DOMAIN, dev_trust_dir(d.data_dir))
    return domain.mint(spiffe_id, "warden", ttl=300)


def _details(purpose: str, **extra: Any) -> str:
    return json.dumps([{"type": "agent_task", "purpose": purpose, "category": "support", **extra}])


def _delegation(child_svid: str, parent_token: str, scope: str, purpose: str) -> dict[str, str]:
    """An RFC 8693 delegation request: the child's identity, acting for the parent's task."""
    return {
        "grant_type": TOKEN_EXCHANGE,
        "subject_token": child_svid,
        "subject_token_type": JWT_TOKEN_TYPE,
        "actor_token": parent_token,
        "actor_token_type": ACCESS_TOKEN_TYPE,
        "scope": scope,
        "authorization_details": _details(purpose),
    }


def _evaluate(d: Demo, spiffe_id: str, properties: dict[str, Any], context: dict[str, Any]) -> Any:
    body = {
        "subject": {"type": "agent", "id": spiffe_id, "properties": properties},
        "action": {"name": "tools/call"},
        "resource": {"type": "tool", "id": "tickets.read"},
        "context": context,
    }
    status, out = d.call("POST", "/access/v1/evaluation", json_body=body)
    if status != 200:
        raise StepError(f"the PDP did not answer: HTTP {status}")
    return out


# -- on the demo server ----------------------------------------------------------------------


def delegate_subtask(d: Demo) -> None:
    status, helper = d.call("POST", "/v1/agents", json_body=HELPER, admin=True, show=("name",))
    d.check(status == 201, "a second agent, ledger-bot, is registered", helper)
    status, parent = d.call(
        "POST",
        "/oauth2/token",
        form={
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": _svid(d, d.spiffe_id),
            "subject_token_type": JWT_TOKEN_TYPE,
            "scope": "tickets.read email.send",
            "authorization_details": _details(
                "answer the customer about invoice INV-7731", on_behalf_of="carol@example.com"
            ),
        },
        show=("task_id", "scope"),
    )
    d.check(status == 200, "invoice-bot starts a new task for carol@example.com", parent)
    d.facts["parent"] = parent
    status, child = d.call(
        "POST",
        "/oauth2/token",
        form=_delegation(
            _svid(d, helper["spiffe_id"]),
            parent["access_token"],
            "tickets.read",
            "find invoice INV-7731 in the ticket history",
        ),
        show=("task_id", "scope"),
    )
    d.check(status == 200, "ledger-bot gets a subtask credential (RFC 8693 delegation)", child)
    claims = jwt_claims(child["access_token"])
    detail = child["authorization_details"][0]
    d.say(f"child claims: sub={claims['sub']} act={json.dumps(claims.get('act'))}")
    d.check(
        claims.get("act") == {"sub": d.spiffe_id} and detail.get("depth") == 1,
        "the credential names the chain: ledger-bot acting for invoice-bot (depth 1)",
        detail,
    )
    decision = _evaluate(d, helper["spiffe_id"], {"token": child["access_token"]}, {})
    d.check(decision["decision"] is True, "the subtask may read tickets", decision)
    status, wider = d.call(
        "POST",
        "/oauth2/token",
        form=_delegation(
            _svid(d, helper["spiffe_id"]),
            parent["access_token"],
            "tickets.read payments.refund",
            "refund the invoice",
        ),
    )
    d.check(
        status == 400 and wider.get("error") == "invalid_scope",
        "a subtask asking for more than its parent holds is refused (invalid_scope)",
        wider,
    )
    status, ended = d.call(
        "POST",
        f"/v1/tasks/{parent['task_id']}/complete",
        bearer=parent["access_token"],
        show=("status", "ended_subtasks"),
    )
    d.check(
        status == 200 and ended.get("ended_subtasks") == [child["task_id"]],
        "completing the parent task ends the subtask with it",
        ended,
    )
    after = _evaluate(d, helper["spiffe_id"], {"token": child["access_token"]}, {})
    d.check(after["decision"] is False, "the subtask's credential is dead now", after)


def dpop_bound_call(d: Demo) -> None:
    from warden.tokens.dpop import DPoPKey

    key = DPoPKey()
    d.say(f"the agent holds an ES256 key, thumbprint {key.jkt}")
    status, task = d.call(
        "POST",
        "/oauth2/token",
        form={
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": _svid(d, d.spiffe_id),
            "subject_token_type": JWT_TOKEN_TYPE,
            "scope": "tickets.read",
            "authorization_details": _details("read ticket T-1042"),
        },
        headers={"DPoP": key.proof("POST", f"{d.url}/oauth2/token")},
        show=("token_type", "task_id"),
    )
    d.check(status == 200 and task.get("token_type") == "DPoP", "a DPoP-bound credential", task)
    token = task["access_token"]
    d.check(
        jwt_claims(token).get("cnf") == {"jkt": key.jkt},
        "the credential carries cnf.jkt: useless without the agent's private key",
        jwt_claims(token).get("cnf"),
    )
    http = {"http": {"method": "GET", "uri": API_URI}}
    proof = key.proof("GET", API_URI, access_token=token)
    ok = _evaluate(d, d.spiffe_id, {"token": token, "dpop": proof}, http)
    d.check(ok["decision"] is True, "with a fresh proof for GET " + API_URI + ": allowed", ok)
    replay = _evaluate(d, d.spiffe_id, {"token": token, "dpop": proof}, http)
    d.check(
        replay["decision"] is False and replay["context"].get("reason") == "invalid_dpop_proof",
        "the same proof again (a replay): denied",
        replay,
    )
    stolen = _evaluate(d, d.spiffe_id, {"token": token}, http)
    d.check(stolen["decision"] is False, "the credential alone (stolen, no proof): denied", stolen)


# -- two replicas on PostgreSQL -------------------------------------------------------------------


def _stack(d: Demo) -> ExitStack:
    stack = d.facts.get("lifecycle_stack")
    if stack is None:
        stack = ExitStack()
        atexit.register(stack.close)  # even when a later step fails
        d.facts["lifecycle_stack"] = stack
    assert isinstance(stack, ExitStack)
    return stack


def start_replicas(d: Demo) -> None:
    import psycopg
    from psycopg import sql

    from warden.cli.cluster import (
        ReplicaClient,
        local_cluster,
        postgres_unreachable,
        postgres_url,
        temporary_schema,
    )

    base = postgres_url()
    error = postgres_unreachable(base)
    if error is not None:
        d.say(f"skipped: PostgreSQL is not reachable at {base} ({error})")
        d.facts["no_postgres"] = True
        return
    stack = _stack(d)
    tag = secrets.token_hex(4)
    data_schema, prefix = f"warden_demo_data_{tag}", f"wdemo{tag}_"
    with psycopg.connect(base, autocommit=True) as admin:
        schema = sql.Identifier(data_schema)
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(schema))
        admin.execute(sql.SQL("CREATE TABLE {}.invoices (id text, amount int)").format(schema))
        admin.execute(sql.SQL("CREATE TABLE {}.payroll (name text, salary int)").format(schema))
        admin.execute(
            sql.SQL("INSERT INTO {}.invoices VALUES ('INV-7731', 120), ('INV-7732', 80)").format(
                schema
            )
        )
    stack.callback(_drop_demo_data, base, data_schema, prefix)
    url = stack.enter_context(temporary_schema(base, "warden_demo"))
    config = {
        "leases": {
            "reaper_interval": "5s",
            "postgres": {
                "invoices": {
                    "dsn": base,
                    "role_prefix": prefix,
                    "scope": "lease.invoices",
                    "max_ttl": "15m",
                    "grants": [
                        {"privileges": ["USAGE"], "on": "schema", "objects": [data_schema]},
                        {
                            "privileges": ["SELECT"],
                            "on": "table",
                            "objects": [f"{data_schema}.invoices"],
                        },
                    ],
                }
            },
        }
    }
    d.say("starting two `warden serve` replicas on one PostgreSQL schema …")
    cluster = stack.enter_context(
        local_cluster(url, Path(d.data_dir) / "replicas", replicas=2, config=config)
    )
    a = stack.enter_context(ReplicaClient(cluster.urls[0], cluster.admin_token))
    b = stack.enter_context(ReplicaClient(cluster.urls[1], cluster.admin_token))
    listed = a.admin_get("/v1/replicas")["replicas"]
    d.check(len(listed) == 2, f"replica A {a.url} and replica B {b.url} are both live", listed)
    a.register("report-bot", ["tickets.read", "lease.invoices"])
    d.facts.update(cluster=cluster, a=a, b=b, data_schema=data_schema)


def _query(lease: dict[str, Any], statement: str, *names: str) -> str:
    """Run ``statement`` as the lease's role; ``{}`` in it are filled with quoted ``names``."""
    import psycopg
    from psycopg import sql

    query = sql.SQL(statement).format(*(sql.Identifier(n) for n in names))
    try:
        with psycopg.connect(
            host="127.0.0.1",
            port=5432,
            dbname=lease["database"],
            user=lease["username"],
            password=lease["password"],
            connect_timeout=3,
        ) as conn:
            rows = conn.execute(query).fetchall()
        return f"ok: {rows}"
    except psycopg.Error as exc:
        return f"refused: {str(exc).strip().splitlines()[0]}"


def database_lease(d: Demo) -> None:
    from warden.cli.cluster import dev_svid

    if d.facts.get("no_postgres"):
        d.say("skipped: needs PostgreSQL")
        return
    a, cluster, schema = d.facts["a"], d.facts["cluster"], d.facts["data_schema"]
    task = a.start_task(
        dev_svid(cluster.data_dir, "report-bot"),
        "tickets.read lease.invoices",
        purpose="total the open invoices",
    )
    r = a.http.post(
        f"/v1/tasks/{task['task_id']}/leases",
        json={"kind": "postgres", "target": "invoices"},
        headers={"Authorization": f"Bearer {task['access_token']}"},
    )
    d.check(r.status_code == 201, "the agent asks replica A for a database login", r.text[:200])
    lease = r.json()
    until = time.strftime("%H:%M:%S", time.localtime(lease["expires_at"]))
    d.say(
        f"lease {lease['id']}: role {lease['username']} on {lease['host']}:{lease['port']}/"
        f"{lease['database']}, valid until {until} (never past the task's expiry)"
    )
    granted = _query(lease, "SELECT id, amount FROM {}.invoices ORDER BY id", schema)
    d.check(granted.startswith("ok"), f"it reads what the template grants — {granted}", granted)
    other = _query(lease, "SELECT * FROM {}.payroll", schema)
    d.check(other.startswith("refused"), f"and nothing else — {other}", other)
    done = a.http.post(
        f"/v1/tasks/{task['task_id']}/complete",
        headers={"Authorization": f"Bearer {task['access_token']}"},
    ).json()
    d.check(
        done.get("leases", {}).get("revoked") == [lease["id"]],
        "the agent completes its task: the lease is revoked with it (role dropped)",
        done.get("leases"),
    )
    after = _query(lease, "SELECT 1")
    d.check(after.startswith("refused"), f"the login no longer works — {after}", after)


def kill_across_replicas(d: Demo) -> None:
    from warden.cli.cluster import dev_svid

    if d.facts.get("no_postgres"):
        d.say("skipped: needs PostgreSQL")
        return
    a, b, cluster = d.facts["a"], d.facts["b"], d.facts["cluster"]
    spiffe = f"spiffe://{DEV_TRUST_DOMAIN}/agent/report-bot"
    task = b.start_task(
        dev_svid(cluster.data_dir, "report-bot"),
        "tickets.read lease.invoices",
        purpose="watch the ticket queue",
    )
    token = task["access_token"]
    lease = b.http.post(
        f"/v1/tasks/{task['task_id']}/leases",
        json={"kind": "postgres", "target": "invoices"},
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    d.check(b.allowed(spiffe, token, "tickets.read"), "on replica B the agent works, with a lease")
    killed: dict[str, Any] = {}
    kill = threading.Thread(
        target=lambda: killed.update(
            a.admin_post("/v1/agents/report-bot/suspend", {"reason": "demo kill switch"})
        )
    )
    started = time.perf_counter()
    kill.start()
    while b.allowed(spiffe, token, "tickets.read"):  # watch B while A runs the cascade
        if time.perf_counter() - started > 10:
            raise StepError("replica B still allows the agent 10 s after the kill")
        time.sleep(0.002)
    took = (time.perf_counter() - started) * 1000
    kill.join(30)
    d.check(
        killed.get("tasks_ended") == 1,
        f"replica B denies the agent {took:.1f} ms after the kill was sent to replica A",
        killed,
    )
    d.say(
        f"on A: {killed['tasks_ended']} task ended, lease(s) {killed['leases']['revoked']} "
        f"revoked (role dropped, sessions ended); the whole cascade took {killed['cascade_ms']} ms"
    )
    gone = _query(lease, "SELECT 1")
    d.check(gone.startswith("refused"), f"and its database login is gone — {gone}", gone)
    d.facts["lifecycle_stack"].close()
    d.ok("replicas stopped, demo schemas and roles removed")


def _drop_demo_data(base: str, schema: str, prefix: str) -> None:
    import psycopg
    from psycopg import sql

    try:
        with psycopg.connect(base, autocommit=True) as admin:
            for (role,) in admin.execute(
                "SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)", (prefix,)
            ).fetchall():
                admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
                admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
            admin.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
            )
    except psycopg.Error:
        pass  # best effort: the demo must not fail while cleaning up


STEPS: list[Step] = [
    ("Delegate a subtask to another agent (a swarm)", delegate_subtask),
    ("A DPoP-bound call: a stolen credential is useless", dpop_bound_call),
    ("Two replicas on PostgreSQL", start_replicas),
    ("A just-in-time database login that dies with its task", database_lease),
    ("Kill switch on replica A, enforced on replica B", kill_across_replicas),
]
