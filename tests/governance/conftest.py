"""Governance tests reuse the in-process Warden of the API tests (``World``)."""

from __future__ import annotations

from tests.api.conftest import World, world

__all__ = ["World", "world"]
