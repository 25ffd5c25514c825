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
