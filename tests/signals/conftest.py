"""A Warden world (tests/api) with the signals loop slowed down so tests drive it by hand."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.api.conftest import POLICIES, World
from warden.api.app import create_app
from warden.bootstrap import Warden
from warden.config import Settings, TrustDomainConfig
from warden.core.clock import FrozenClock
from warden.service.operators import ADMIN_TOKEN_FILE
from warden.tokens.svid import DevTrustDomain

pytestmark = pytest.mark.signals

MakeWorld = Callable[..., World]


@pytest.fixture
def make_world(tmp_path: Path) -> Iterator[MakeWorld]:
    opened: list[TestClient] = []
    trust = DevTrustDomain.create("example.org", tmp_path / "trust")
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES, policies)

    def make(**settings: Any) -> World:
        config = Settings(
            data_dir=tmp_path / "data",
            policies_dir=policies,
            trust_domains=(TrustDomainConfig("example.org", trust.bundle_path),),
            policy_reload_interval=0.2,
            signals_interval=3600.0,  # the tests call tick() themselves
            **settings,
        )
        clock = FrozenClock(time.time())
        w = Warden(config, clock=clock)
        token_file = w.operators.bootstrap(config.data_dir)
        token = (token_file or config.data_dir / ADMIN_TOKEN_FILE).read_text().strip()
        client = TestClient(create_app(w))
        client.__enter__()
        opened.append(client)
        return World(w, clock, client, trust, {"Authorization": f"Bearer {token}"}, policies)

    yield make
    for client in reversed(opened):
        client.__exit__(None, None, None)


@pytest.fixture
def world(make_world: MakeWorld) -> World:
    return make_world()
