"""Governance tests reuse the in-process Warden of the API tests (``World``), with workload
identities minted at the FrozenClock's time, so tests can move the clock by weeks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from tests.api.conftest import World
from tests.api.conftest import world as api_world
from warden.core.clock import FrozenClock

__all__ = ["World", "api_world", "world"]


class ClockedTrust:
    """A DevTrustDomain whose SVIDs are issued at the frozen clock's now."""

    def __init__(self, inner: Any, clock: FrozenClock) -> None:
        self._inner = inner
        self._clock = clock

    def mint(
        self, spiffe_id: str, audience: Any, ttl: float = 300, now: float | None = None, **kw: Any
    ) -> str:
        when = self._clock.now() if now is None else now
        minted: str = self._inner.mint(spiffe_id, audience, ttl=ttl, now=when, **kw)
        return minted

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.fixture
def world(api_world: World) -> Iterator[World]:
    yield replace(api_world, trust=ClockedTrust(api_world.trust, api_world.clock))  # type: ignore[arg-type]
