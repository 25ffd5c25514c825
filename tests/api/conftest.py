"""An in-process Warden with a dev trust domain, test policies, and an HTTP client (no sockets)."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from warden.api.app import create_app
from warden.bootstrap import Warden
from warden.config import Settings, TrustDomainConfig
from warden.core.clock import FrozenClock
from warden.tokens.svid import DevTrustDomain

POLICIES = Path(__file__).parent / "policies"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"


@dataclass
class World:
    warden: Warden
    clock: FrozenClock
    client: TestClient
    trust: DevTrustDomain
    admin: dict[str, str]
    policies: Path

    def register(self, name: str = "support-bot", **extra: Any) -> dict[str, Any]:
        body = {
            "name": name,
            "owner": "alice@example.com",
            "purpose": "summarise support tickets",
            "risk_tier": "medium",
            "entitlements": [
                "tickets.read",
                "tickets.summarise",
                "email.send",
                "facts.check",
                "tickets.delete",
            ],
            "groups": ["support"],
            **extra,
        }
        r = self.client.post("/v1/agents", json=body, headers=self.admin)
        assert r.status_code == 201, r.text
        return r.json()

    def exchange(
        self,
        svid: str,
        scope: str = "tickets.read email.send",
        *,
        purpose: str = "triage the queue",
        category: str = "support",
        **form: Any,
    ) -> Any:
        data = {
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": svid,
            "subject_token_type": JWT_TYPE,
            "scope": scope,
            "authorization_details": json.dumps(
                [{"type": "agent_task", "purpose": purpose, "category": category}]
            ),
            **form,
        }
        return self.client.post("/oauth2/token", data=data)

    def start_task(
        self, name: str = "support-bot", scope: str = "tickets.read email.send", **kw: Any
    ) -> dict[str, Any]:
        agent = self.client.get(f"/v1/agents/{name}", headers=self.admin).json()
        # minted on the world's clock: a test that moves the clock must not outlive the SVID
        svid = self.trust.mint(agent["spiffe_id"], "warden", now=self.clock.now())
        r = self.exchange(svid, scope, **kw)
        assert r.status_code == 200, r.text
        return {**r.json(), "spiffe_id": agent["spiffe_id"]}

    def decide(self, token: str, spiffe_id: str, tool: str, **context: Any) -> dict[str, Any]:
        r = self.client.post(
            "/access/v1/evaluation",
            json={
                "subject": {"type": "agent", "id": spiffe_id, "properties": {"token": token}},
                "action": {"name": "tools/call"},
                "resource": {"type": "tool", "id": tool},
                "context": context,
            },
        )
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def audit(self, type_prefix: str | None = None) -> list[dict[str, Any]]:
        self.warden.writer.flush()
        params = {"limit": "1000"}
        if type_prefix:
            params["type"] = type_prefix
        r = self.client.get("/v1/audit", params=params, headers=self.admin)
        assert r.status_code == 200, r.text
        records: list[dict[str, Any]] = r.json()["records"]
        return records


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES, policies)
    trust = DevTrustDomain.create("example.org", tmp_path / "trust")
    settings = Settings(
        data_dir=tmp_path / "data",
        policies_dir=policies,
        trust_domains=(TrustDomainConfig("example.org", trust.bundle_path),),
        policy_reload_interval=0.2,
        # governance tests reuse this world and move the clock by months: keep the admin's
        # token valid through them (operator token expiry has its own tests)
        operator_token_ttl=10 * 365 * 86400.0,
    )
    clock = FrozenClock(time.time())
    w = Warden(settings, clock=clock)
    token_file = w.operators.bootstrap(settings.data_dir)
    assert token_file is not None
    admin = {"Authorization": f"Bearer {token_file.read_text().strip()}"}
    with TestClient(create_app(w)) as client:
        yield World(w, clock, client, trust, admin, policies)
