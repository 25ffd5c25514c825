"""Suite-wide fixtures: a clean environment (no WARDEN_* leaking in from the shell)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in list(os.environ):
        if key.startswith("WARDEN_") and key != "WARDEN_TEST_DATABASE_URL":
            monkeypatch.delenv(key, raising=False)
    yield
