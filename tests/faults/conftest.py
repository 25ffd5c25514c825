"""The fault suite (issue 11): real processes, real faults, no mocks. Helpers live in the
``_durable`` / ``_cluster`` / ``_slow`` modules beside the tests that use them."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/faults/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.faults)
