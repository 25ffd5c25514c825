from __future__ import annotations

import time
from pathlib import Path

import pytest

from warden.attestation import JWTSVIDAttestor
from warden.tokens import DevTrustDomain

AUDIENCE = "warden"
AGENT = "spiffe://example.org/agent/researcher"


@pytest.fixture
def now() -> float:
    """Wall-clock now: py-spiffe checks `exp` against the real clock, whatever Warden's says."""
    return time.time()


@pytest.fixture
def domain(tmp_path: Path) -> DevTrustDomain:
    return DevTrustDomain.create("example.org", tmp_path / "example")


@pytest.fixture
def stranger(tmp_path: Path) -> DevTrustDomain:
    """Another trust domain, not configured in the attestor."""
    return DevTrustDomain.create("other.org", tmp_path / "other")


@pytest.fixture
def attestor(domain: DevTrustDomain) -> JWTSVIDAttestor:
    return JWTSVIDAttestor({"example.org": domain.bundle_path}, AUDIENCE)


# -- an in-process Warden with attestation settings (reuses the API suite's World) -----------

import shutil  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from dataclasses import replace  # noqa: E402
from typing import Any  # noqa: E402

from starlette.testclient import TestClient  # noqa: E402

from tests.api.conftest import POLICIES, World  # noqa: E402
from warden.api.app import create_app  # noqa: E402
from warden.bootstrap import Warden  # noqa: E402
from warden.config import Settings, TrustDomainConfig  # noqa: E402
from warden.core.clock import FrozenClock  # noqa: E402

MakeWorld = Callable[..., World]


@pytest.fixture
def make_world(tmp_path: Path) -> Iterator[MakeWorld]:
    """Build a World whose Settings carry ``**overrides`` (oidc issuers, trust domains …)."""
    opened: list[tuple[TestClient, Warden]] = []

    def build(**overrides: Any) -> World:
        root = tmp_path / f"w{len(opened)}"
        policies = root / "policies"
        shutil.copytree(POLICIES, policies)
        trust = DevTrustDomain.create("example.org", root / "trust")
        settings = Settings(
            data_dir=root / "data",
            policies_dir=policies,
            trust_domains=(TrustDomainConfig("example.org", trust.bundle_path),),
            policy_reload_interval=0.2,
        )
        settings = replace(settings, **overrides)
        clock = FrozenClock(time.time())
        w = Warden(settings, clock=clock)
        token_file = w.operators.bootstrap(settings.data_dir)
        assert token_file is not None
        admin = {"Authorization": f"Bearer {token_file.read_text().strip()}"}
        client = TestClient(create_app(w))
        client.__enter__()
        opened.append((client, w))
        return World(w, clock, client, trust, admin, policies)

    yield build
    for client, _ in opened:
        client.__exit__(None, None, None)


@pytest.fixture
def world(make_world: MakeWorld) -> World:
    return make_world()
