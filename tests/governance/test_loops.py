"""The background schedules run in the composition root: with short loop intervals and a
FrozenClock, moving the clock past a grace period is all it takes for the loops to act."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from warden.api.app import create_app
from warden.bootstrap import Warden
from warden.config import Settings, TrustDomainConfig
from warden.core.clock import FrozenClock
from warden.tokens.svid import DevTrustDomain

from .conftest import World

pytestmark = pytest.mark.governance

POLICIES = Path(__file__).parent.parent / "api" / "policies"


def eventually(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Wait for a loop to act (no timing is asserted: only that it happens)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"never happened: {what}")


@pytest.fixture
def looping(tmp_path: Path) -> Iterator[tuple[World, Path]]:
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES, policies)
    trust = DevTrustDomain.create("example.org", tmp_path / "trust")
    anchor = tmp_path / "anchor.jsonl"
    settings = Settings(
        data_dir=tmp_path / "data",
        policies_dir=policies,
        trust_domains=(TrustDomainConfig("example.org", trust.bundle_path),),
        governance_interval=0.05,
        checkpoint_interval=0.05,
        checkpoint_sinks=(str(anchor),),
        export_sinks=((str(tmp_path / "ocsf.jsonl"), "ocsf"),),
        export_interval=0.05,
    )
    clock = FrozenClock(time.time())
    w = Warden(settings, clock=clock)
    token_file = w.operators.bootstrap(settings.data_dir)
    assert token_file is not None
    admin = {"Authorization": f"Bearer {token_file.read_text().strip()}"}
    with TestClient(create_app(w)) as client:
        yield World(w, clock, client, trust, admin, policies), tmp_path


def test_loops_suspend_orphans_sign_checkpoints_and_export(
    looping: tuple[World, Path],
) -> None:
    world, tmp_path = looping
    world.register("bot")
    world.client.post("/v1/owners/alice@example.com/deactivate", json={}, headers=world.admin)

    def status() -> str:
        return str(world.client.get("/v1/agents/bot", headers=world.admin).json()["status"])

    time.sleep(0.3)  # several loop ticks inside the grace period: nothing happens
    assert status() == "active"
    world.clock.advance(86400 + 1)
    eventually(lambda: status() == "suspended", "the orphan was suspended")

    anchor = tmp_path / "anchor.jsonl"
    head = world.warden.store.audit_head
    eventually(
        lambda: (
            anchor.exists() and json.loads(anchor.read_text().splitlines()[-1])["seq"] == head()[0]
        ),
        "the newest head was signed and anchored outside the database",
    )
    exported = tmp_path / "ocsf.jsonl"
    eventually(
        lambda: exported.exists() and len(exported.read_text().splitlines()) == head()[0],
        "every record was exported as OCSF",
    )
