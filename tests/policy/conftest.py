"""Fixtures for the policy-safety suite (issue 15): an in-process Warden over SQLite or
PostgreSQL, the official Cedar validator, and policy folders to edit."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.api.conftest import POLICIES, World
from warden.api.app import create_app
from warden.bootstrap import Warden
from warden.cli.cluster import postgres_unreachable, postgres_url, temporary_schema
from warden.config import Settings, TrustDomainConfig
from warden.core.clock import FrozenClock
from warden.tokens.svid import DevTrustDomain

ROOT = Path(__file__).resolve().parents[2]
CEDAR_WASM = ROOT / "tools" / "cedar-wasm"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    """The API test world (agent-mode policies), on SQLite and on PostgreSQL."""
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES, policies)
    trust = DevTrustDomain.create("example.org", tmp_path / "trust")

    def build(database_url: str | None) -> Iterator[World]:
        settings = Settings(
            data_dir=tmp_path / "data",
            policies_dir=policies,
            database_url=database_url,
            trust_domains=(TrustDomainConfig("example.org", trust.bundle_path),),
            policy_reload_interval=3600,
        )
        clock = FrozenClock(time.time())
        w = Warden(settings, clock=clock)
        token_file = w.operators.bootstrap(settings.data_dir)
        assert token_file is not None
        admin = {"Authorization": f"Bearer {token_file.read_text().strip()}"}
        with TestClient(create_app(w)) as client:
            yield World(w, clock, client, trust, admin, policies)

    if request.param == "sqlite":
        yield from build(None)
        return
    base = postgres_url()
    error = postgres_unreachable(base)
    if error is not None:
        pytest.skip(f"PostgreSQL not reachable at {base}: {error}")
    with temporary_schema(base, "wt_policy") as url:
        yield from build(url)


def cedar_wasm() -> Path:
    """The official Cedar validator kit; a missing one fails under CI and skips locally."""
    module = CEDAR_WASM / "node_modules" / "@cedar-policy" / "cedar-wasm"
    node = shutil.which("node")
    if node is not None and module.is_dir():
        return CEDAR_WASM
    problem = "node is not installed" if node is None else f"{module} is missing"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(
            f"the official Cedar validator is required in CI: {problem} (.ci/run installs it)"
        )
    pytest.skip(f"official Cedar validator unavailable: {problem}; run `make cedar-wasm`")


def official_validate(schema: str | dict[str, Any], policies: str) -> dict[str, Any]:
    """Run @cedar-policy/cedar-wasm's schema parse and strict validation."""
    kit = cedar_wasm()
    out = subprocess.run(
        ["node", str(kit / "validate.mjs")],
        input=json.dumps({"schema": schema, "policies": policies}),
        capture_output=True,
        text=True,
        cwd=kit,
        timeout=60,
        check=True,
    )
    answer: dict[str, Any] = json.loads(out.stdout)
    return answer
