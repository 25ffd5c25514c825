"""Fixtures for the credential-lifecycle tests (issue 4): an in-process Warden whose settings each
test can shape, plus agents for delegation chains."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.api.conftest import World
from warden.api.app import create_app
from warden.config import Settings, TrustDomainConfig
from warden.core.clock import FrozenClock
from warden.service.container import Warden
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
