"""Leases through the Python SDK (sync and async) against a real Warden served over HTTP.

The JWT lease kind needs no database; the PostgreSQL kind uses the machine's PostgreSQL
(``target`` fixture, skipped with a reason when it cannot be reached).
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import psycopg
import pytest
from psycopg import sql

from tests.enforcement.conftest import ThreadServer
from tests.lifecycle.conftest import POLICIES, Target
from warden.api.app import create_app
from warden.bootstrap import Warden
from warden.config import Settings, TrustDomainConfig
from warden.demo.server import free_port
from warden.sdk import AsyncWardenClient, Lease, RemoteAPIError, TaskCredential, WardenClient
from warden.tokens.svid import DevTrustDomain

pytestmark = pytest.mark.lifecycle

BILLING = "https://billing.example.com"
SERVICES = {"billing": {"audience": BILLING, "scope": "lease.billing", "max_ttl": 600}}
ENTITLEMENTS = ["tickets.read", "lease.billing", "lease.reporting"]


@dataclass
class Served:
    url: str
    trust: DevTrustDomain
    admin_token: str

    def register(self, name: str) -> str:
        body = {
            "name": name,
            "owner": "alice@example.com",
            "purpose": "reports",
            "risk_tier": "medium",
            "entitlements": ENTITLEMENTS,
            "groups": ["support"],
        }
        r = httpx.post(
            f"{self.url}/v1/agents",
            json=body,
            headers={"Authorization": f"Bearer {self.admin_token}"},
        )
        assert r.status_code == 201, r.text
        spiffe_id: str = r.json()["spiffe_id"]
        return spiffe_id

    def start(self, client: WardenClient, name: str, scope: str) -> TaskCredential:
        svid = self.trust.mint(self.register(name), "warden")
        return client.exchange(svid, scope=scope, purpose="monthly report", category="support")

    def introspect(self, token: str) -> dict[str, Any]:
        r = httpx.post(
            f"{self.url}/oauth2/introspect",
            data={"token": token},
            headers={"Authorization": f"Bearer {self.admin_token}"},
        )
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body


@contextmanager
def serving(tmp_path: Path, **settings: Any) -> Iterator[Served]:
    """A real Warden on a loopback port, with the lease targets given."""
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES, policies)
    trust = DevTrustDomain.create("example.org", tmp_path / "trust")
    port = free_port()
    w = Warden(
        Settings(
            port=port,
            data_dir=tmp_path / "data",
            policies_dir=policies,
            trust_domains=(TrustDomainConfig("example.org", trust.bundle_path),),
            lease_services=SERVICES,
            **settings,
        )
    )
    token_file = w.operators.bootstrap(w.settings.data_dir)
    assert token_file is not None
    with ThreadServer(create_app(w), port) as server:
        yield Served(server.url, trust, token_file.read_text().strip())


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    with serving(tmp_path) as s:
        yield s


def _billing_claims(served: Served, lease: Lease) -> dict[str, Any]:
    """The JWT lease verified as the billing service would: Warden's JWKS, its own audience."""
    assert lease.token is not None
    keys = jwt.PyJWKSet.from_dict(httpx.get(f"{served.url}/.well-known/jwks.json").json())
    kid = jwt.get_unverified_header(lease.token)["kid"]
    key = next(k for k in keys.keys if k.key_id == kid)
    claims: dict[str, Any] = jwt.decode(
        lease.token, key.key, algorithms=[key.algorithm_name], audience=BILLING
    )
    return claims


def test_sync_client_leases_a_service_token_for_its_task(served: Served) -> None:
    with (
        WardenClient(served.url) as client,
        WardenClient(served.url, operator_token=served.admin_token) as operator,
    ):
        cred = served.start(client, "reporter", "tickets.read lease.billing")
        lease = client.create_lease(cred, "jwt", "billing", ttl=120)
        assert (lease.kind, lease.target, lease.state) == ("jwt", "billing", "active")
        assert lease.task_id == cred.task_id and lease.audience == BILLING
        assert lease.token_type == "Bearer"
        assert lease.expires_at <= time.time() + 121
        assert lease.token is not None and lease.token not in repr(lease)
        claims = _billing_claims(served, lease)
        assert claims["task"] == cred.task_id and claims["lease"] == lease.id
        assert claims["sub"] == cred.spiffe_id
        with pytest.raises(ValueError, match="postgres"):
            _ = lease.dsn

        # the agent lists its own task's leases (no secrets); an operator may too, by task id
        (mine,) = client.leases(cred)
        assert (mine.id, mine.state, mine.token) == (lease.id, "active", None)
        assert [x.id for x in operator.leases(cred.task_id)] == [lease.id]

        # refusals come back as errors with Warden's codes
        with pytest.raises(RemoteAPIError) as unknown:
            client.create_lease(cred, "jwt", "payroll")
        assert (unknown.value.status, unknown.value.error_code) == (400, "lease_target_unknown")
        narrow = served.start(client, "narrow", "tickets.read")
        with pytest.raises(RemoteAPIError) as scope:
            client.create_lease(narrow, "jwt", "billing")
        assert (scope.value.status, scope.value.error_code) == (403, "forbidden")
        with pytest.raises(RemoteAPIError) as other:
            client.leases(TaskCredential(narrow.token, cred.task_id, (), 0, 0, 0, ""))
        assert other.value.status == 403  # a credential only reads its own task's leases
        with pytest.raises(RemoteAPIError) as anonymous:
            client.leases(cred.task_id)  # a task id needs an operator token
        assert anonymous.value.status == 401

        # the lease dies with its task
        assert served.introspect(lease.token)["active"] is True
        ended = client.end_task(cred)
        assert ended["leases"]["revoked"] == [lease.id]
        (after,) = operator.leases(cred.task_id)
        assert after.state == "revoked" and after.revoked_at is not None
        assert served.introspect(lease.token) == {"active": False}
        with pytest.raises(RemoteAPIError) as ended_task:
            operator.create_lease(cred.task_id, "jwt", "billing")
        assert ended_task.value.error_code == "task_not_active"


def test_async_client_leases_a_service_token_for_its_task(served: Served) -> None:
    with WardenClient(served.url) as sync:
        cred = served.start(sync, "async-reporter", "tickets.read lease.billing")

    async def scenario() -> None:
        async with (
            AsyncWardenClient(served.url) as client,
            AsyncWardenClient(served.url, operator_token=served.admin_token) as operator,
        ):
            lease = await client.create_lease(cred, "jwt", "billing")
            assert lease.state == "active" and lease.token is not None
            assert _billing_claims(served, lease)["task"] == cred.task_id
            assert [x.id for x in await client.leases(cred)] == [lease.id]
            by_operator = await operator.create_lease(cred.task_id, "jwt", "billing", ttl=60)
            listed = {x.id: x.state for x in await operator.leases(cred.task_id)}
            assert listed == {lease.id: "active", by_operator.id: "active"}
            with pytest.raises(RemoteAPIError) as unknown:
                await client.create_lease(cred, "postgres", "reporting")
            assert unknown.value.error_code == "lease_target_unknown"
            await client.end_task(cred, failed=True, reason="done early")
            states = {x.state for x in await operator.leases(cred.task_id)}
            assert states == {"revoked"}

    asyncio.run(scenario())


@pytest.mark.postgres
def test_sync_client_leases_a_database_login_that_dies_with_its_task(
    tmp_path: Path, target: Target
) -> None:
    with (
        serving(tmp_path, lease_postgres=target.config()) as served,
        WardenClient(served.url) as client,
        WardenClient(served.url, operator_token=served.admin_token) as operator,
    ):
        cred = served.start(client, "analyst", "tickets.read lease.reporting")
        lease = client.create_lease(cred, "postgres", "reporting", ttl=300)
        assert (lease.kind, lease.target, lease.state) == ("postgres", "reporting", "active")
        assert lease.username in target.roles()
        assert lease.password is not None and lease.password not in repr(lease)
        with psycopg.connect(lease.dsn, connect_timeout=3, autocommit=True) as conn:
            rows = conn.execute(
                sql.SQL("SELECT item FROM {}.orders ORDER BY id").format(
                    sql.Identifier(target.schema)
                )
            ).fetchall()
        assert rows == [("tea",), ("cake",)]
        (listed,) = client.leases(cred)
        assert listed.username is None and listed.password is None  # shown once only

        client.end_task(cred)
        assert target.roles() == []  # the login role is gone with the task
        (after,) = operator.leases(cred.task_id)
        assert after.state == "revoked"
        with pytest.raises(psycopg.OperationalError, match="does not exist"):
            psycopg.connect(lease.dsn, connect_timeout=3)


@pytest.mark.postgres
def test_async_client_leases_a_database_login(tmp_path: Path, target: Target) -> None:
    with (
        serving(tmp_path, lease_postgres=target.config()) as served,
        WardenClient(served.url) as sync,
    ):
        cred = served.start(sync, "async-analyst", "tickets.read lease.reporting")

        async def scenario() -> None:
            async with AsyncWardenClient(served.url) as client:
                lease = await client.create_lease(cred, "postgres", "reporting")
                assert lease.username in target.roles()
                assert lease.host == "127.0.0.1" and lease.port == 5432
                await client.end_task(cred)

        asyncio.run(scenario())
        assert target.roles() == []
