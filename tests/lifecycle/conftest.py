"""Fixtures for the credential-lifecycle tests (issue 4): an in-process Warden whose settings each
test can shape, agents for delegation chains, and a lease target on the machine's PostgreSQL."""

from __future__ import annotations

import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from starlette.testclient import TestClient

from tests.api.conftest import World
from warden.api.app import create_app
from warden.bootstrap import Warden
from warden.cli.cluster import postgres_unreachable, postgres_url
from warden.config import Settings, TrustDomainConfig
from warden.core.clock import FrozenClock
from warden.tokens.svid import DevTrustDomain

POLICIES = Path(__file__).parent / "policies"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
ISSUER = "http://testserver"

AGENTS = {
    "planner": ["tickets.read", "data.read", "data.write", "lease.reporting", "lease.billing"],
    "worker": ["tickets.read", "data.read", "data.write", "lease.reporting", "lease.billing"],
    "helper": ["tickets.read", "data.read", "data.write"],
    "fourth": ["tickets.read", "data.read"],
    "fifth": ["tickets.read", "data.read"],
}


class LifecycleWorld(World):
    def spiffe(self, name: str) -> str:
        return f"spiffe://example.org/agent/{name}"

    def register_all(self, **extra: Any) -> None:
        for name, entitlements in AGENTS.items():
            self.register(name, entitlements=entitlements, groups=["support"], **extra)

    def svid(self, name: str, **claims: Any) -> str:
        return self.trust.mint(self.spiffe(name), "warden", extra_claims=claims or None)

    def delegate(
        self,
        child: str,
        parent_token: str,
        scope: str = "data.read",
        *,
        svid: str | None = None,
        headers: dict[str, str] | None = None,
        **form: Any,
    ) -> Any:
        import json

        data = {
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": svid or self.svid(child),
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "actor_token": parent_token,
            "actor_token_type": ACCESS_TOKEN_TYPE,
            "scope": scope,
            "authorization_details": json.dumps(
                [{"type": "agent_task", "purpose": f"subtask for {child}", "category": "support"}]
            ),
            **form,
        }
        return self.client.post("/oauth2/token", data=data, headers=headers or {})

    def start(
        self,
        name: str,
        scope: str,
        *,
        on_behalf_of: str | None = None,
        headers: dict[str, str] | None = None,
        **form: Any,
    ) -> dict[str, Any]:
        r = self.start_raw(name, scope, on_behalf_of=on_behalf_of, headers=headers, **form)
        assert r.status_code == 200, r.text
        return {**r.json(), "spiffe_id": self.spiffe(name)}

    def start_raw(
        self,
        name: str,
        scope: str,
        *,
        on_behalf_of: str | None = None,
        headers: dict[str, str] | None = None,
        **form: Any,
    ) -> Any:
        import json

        details: dict[str, Any] = {"type": "agent_task", "purpose": "work", "category": "support"}
        if on_behalf_of:
            details["on_behalf_of"] = on_behalf_of
        data = {
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": self.svid(name),
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "scope": scope,
            "authorization_details": json.dumps([details]),
            **form,
        }
        return self.client.post("/oauth2/token", data=data, headers=headers or {})


WorldFactory = Callable[..., LifecycleWorld]


@pytest.fixture
def make_world(tmp_path: Path) -> Iterator[WorldFactory]:
    """``make_world(**settings)`` builds (and later closes) a Warden with those settings."""
    stack = ExitStack()
    count = 0

    def build(**overrides: Any) -> LifecycleWorld:
        nonlocal count
        count += 1
        root = tmp_path / f"w{count}"
        policies = root / "policies"
        shutil.copytree(POLICIES, policies)
        trust = DevTrustDomain.load_or_create("example.org", tmp_path / "trust")
        settings = Settings(
            data_dir=root / "data",
            policies_dir=policies,
            trust_domains=(TrustDomainConfig("example.org", trust.bundle_path),),
            issuer=ISSUER,
            policy_reload_interval=0.2,
            **overrides,
        )
        clock = FrozenClock(time.time())
        w = Warden(settings, clock=clock)
        token_file = w.operators.bootstrap(settings.data_dir)
        assert token_file is not None
        admin = {"Authorization": f"Bearer {token_file.read_text().strip()}"}
        client = stack.enter_context(TestClient(create_app(w), base_url=ISSUER))
        return LifecycleWorld(w, clock, client, trust, admin, policies)

    with stack:
        yield build


@pytest.fixture
def lw(make_world: WorldFactory) -> LifecycleWorld:
    world = make_world()
    world.register_all()
    return world


@dataclass
class Target:
    url: str
    schema: str
    prefix: str

    def admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url, autocommit=True)

    def roles(self) -> list[str]:
        with self.admin() as conn:
            rows = conn.execute(
                "SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)", (self.prefix,)
            ).fetchall()
        return [r[0] for r in rows]

    def config(self, dsn: str | None = None, **overrides: Any) -> dict[str, Any]:
        return {
            "reporting": {
                "dsn": dsn or self.url,
                "role_prefix": self.prefix,
                "scope": "lease.reporting",
                "max_ttl": 900,
                "grants": [
                    {"privileges": ["USAGE"], "on": "schema", "objects": [self.schema]},
                    {"privileges": ["SELECT"], "on": "table", "objects": [f"{self.schema}.orders"]},
                ],
                **overrides,
            }
        }

    def connect_as(self, lease: dict[str, Any]) -> psycopg.Connection[Any]:
        return psycopg.connect(
            host="127.0.0.1",
            port=5432,
            dbname=lease["database"],
            user=lease["username"],
            password=lease["password"],
            connect_timeout=3,
            autocommit=True,
        )


@pytest.fixture
def target() -> Iterator[Target]:
    base = postgres_url()
    error = postgres_unreachable(base)
    if error is not None:
        pytest.skip(f"PostgreSQL not reachable at {base}: {error}")
    tag = secrets.token_hex(5)
    t = Target(base, f"wt_lease_{tag}", f"wt{tag}_")
    schema = sql.Identifier(t.schema)
    with t.admin() as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(schema))
        for table in ("orders", "secrets", "victim"):
            conn.execute(
                sql.SQL("CREATE TABLE {}.{} (id int, item text)").format(
                    schema, sql.Identifier(table)
                )
            )
        conn.execute(sql.SQL("INSERT INTO {}.orders VALUES (1, 'tea'), (2, 'cake')").format(schema))
    yield t
    with t.admin() as conn:
        for role in t.roles():
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(schema))
