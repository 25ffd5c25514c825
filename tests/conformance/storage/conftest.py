"""The storage conformance suites (ADR 0150): each port's tests run on every implementation.

``store`` is parametrised over the in-memory store, SQLite and PostgreSQL (the PostgreSQL cases
come from ``tests/storage/conftest.py``'s ``open_backend``: their own schema each, skipped with the
reason when no server answers — a failure under CI=true, see ``tests/conftest.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.storage.conftest import Backend, open_backend
from warden.storage.memory import MemoryStore

__all__ = ["Backend"]


@pytest.fixture(
    params=[
        pytest.param("memory"),
        pytest.param("sqlite"),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    """A migrated, empty store of each implementation."""
    if request.param == "memory":
        yield MemoryStore()
        return
    with open_backend(request.param, tmp_path) as backend:
        s = backend.open()
        s.migrate()
        yield s
