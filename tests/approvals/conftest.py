"""An in-process Warden with approval policies, approver accounts and a frozen clock."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.api.conftest import World
from warden.api.app import create_app
from warden.approvals import ApprovalSettings
from warden.behaviour import BehaviourSettings
from warden.bootstrap import Warden
from warden.config import Settings, TrustDomainConfig
from warden.core.clock import FrozenClock
from warden.tokens.svid import DevTrustDomain

POLICIES = Path(__file__).parent / "policies"
ENTITLEMENTS = [
    "tickets.read",
    "tickets.delete",
    "tickets.export",
    "tickets.purge",
    "payments.refund",
    "facts.check",
    "http.get",
]


@dataclass
class Approvers(World):
    tokens: dict[str, dict[str, str]] | None = None

    def as_(self, who: str) -> dict[str, str]:
        assert self.tokens is not None
        return self.tokens[who]

    def operator(self, name: str, role: str, human: str | None) -> dict[str, str]:
        body: dict[str, Any] = {"name": name, "role": role}
        if human:
            body["human"] = human
        r = self.client.post("/v1/operators", json=body, headers=self.admin)
        assert r.status_code == 201, r.text
        return {"Authorization": f"Bearer {r.json()['token']}"}

    def agent(self, name: str = "support-bot", **extra: Any) -> dict[str, Any]:
        return self.register(name, entitlements=ENTITLEMENTS, **extra)

    def start_for(self, scope: str, on_behalf_of: str, name: str = "support-bot") -> dict[str, Any]:
        """A task that acts for a person (``on_behalf_of`` in the task details)."""
        agent = self.client.get(f"/v1/agents/{name}", headers=self.admin).json()
        details = [
            {
                "type": "agent_task",
                "purpose": "export for a customer",
                "category": "support",
                "on_behalf_of": on_behalf_of,
            }
        ]
        r = self.exchange(
            self.trust.mint(agent["spiffe_id"], "warden"),
            scope,
            authorization_details=json.dumps(details),
        )
        assert r.status_code == 200, r.text
        return {**r.json(), "spiffe_id": agent["spiffe_id"]}

    def call(self, task: dict[str, Any], tool: str, **context: Any) -> dict[str, Any]:
        return self.decide(task["access_token"], task["spiffe_id"], tool, **context)

    def approve(self, request_id: str, who: str = "alice", **body: Any) -> Any:
        if "digest" not in body:
            shown = self.client.get(f"/v1/approvals/{request_id}", headers=self.admin).json()
            body["digest"] = shown["digest"]
        return self.client.post(
            f"/v1/approvals/{request_id}/approve", json=body, headers=self.as_(who)
        )


def make_world(
    tmp_path: Path,
    *,
    approvals: ApprovalSettings | None = None,
    behaviour: BehaviourSettings | None = None,
    **settings_kw: Any,
) -> Iterator[Approvers]:
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES, policies)
    trust = DevTrustDomain.create("example.org", tmp_path / "trust")
    settings = Settings(
        data_dir=tmp_path / "data",
        policies_dir=policies,
        trust_domains=(TrustDomainConfig("example.org", trust.bundle_path),),
        policy_reload_interval=0.2,
        approvals=approvals
        or ApprovalSettings(groups={"security": frozenset({"carol@example.com"})}),
        behaviour=behaviour or BehaviourSettings(),
        **settings_kw,
    )
    clock = FrozenClock(time.time())
    w = Warden(settings, clock=clock)
    token_file = w.operators.bootstrap(settings.data_dir)
    assert token_file is not None
    admin = {"Authorization": f"Bearer {token_file.read_text().strip()}"}
    with TestClient(create_app(w, manage_lifecycle=False)) as client:
        w.writer.start()
        world = Approvers(w, clock, client, trust, admin, policies)
        world.tokens = {
            "alice": world.operator("alice", "approver", "alice@example.com"),
            "carol": world.operator("carol", "approver", "carol@example.com"),
            "dave": world.operator("dave", "approver", "dave@example.com"),
            "bob": world.operator("bob", "approver", "bob@example.com"),
            "auditor": world.operator("audrey", "auditor", "alice@example.com"),
        }
        try:
            yield world
        finally:
            w.close()


@pytest.fixture
def aw(tmp_path: Path) -> Iterator[Approvers]:
    yield from make_world(tmp_path)


def with_settings(**kw: Any) -> Any:
    return lambda s: replace(s, **kw)
