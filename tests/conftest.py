"""Suite-wide fixtures: a clean environment (no WARDEN_* leaking in from the shell)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

# httpx's 5 s default is a client's production default, not a bound any test checks. The suite
# runs two workers on a shared 2-core machine where every acknowledged change now waits for its
# audit commit (an fsync, issue 11): under that load a register call once took more than 5 s
# (tests/integrity/test_manifests.py). Tests that check a timeout pass their own.
httpx._config.DEFAULT_TIMEOUT_CONFIG.read = 30.0
httpx._config.DEFAULT_TIMEOUT_CONFIG.write = 30.0
httpx._config.DEFAULT_TIMEOUT_CONFIG.pool = 30.0


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in list(os.environ):
        if key.startswith("WARDEN_") and key != "WARDEN_TEST_DATABASE_URL":
            monkeypatch.delenv(key, raising=False)
    yield


def under_ci() -> bool:
    """CI runs with CI=true: there a missing required program is a failure, never a skip."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_module(name: str, install: str) -> object:
    """Import ``name``; locally skip with how to install it, under CI fail."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as exc:
        message = f"`{name}` is not installed ({install})"
        if under_ci():
            pytest.fail(message)
        pytest.skip(message)
        raise AssertionError("unreachable") from exc


def require_program(path: str | None, what: str) -> str:
    """A program's path; locally skip when it is missing, under CI fail."""
    if path is None:
        if under_ci():
            pytest.fail(f"{what} is missing")
        pytest.skip(f"{what} is missing")
    assert path is not None
    return path


# the real services CI must have: a skip naming one of them is a failure under CI=true, so a
# green run can never hide that the PostgreSQL, nginx, Redis or loop-mounted-disk half of the
# suite did not run
_REQUIRED_IN_CI = ("postgresql", "nginx", "redis", "loop-mounted filesystem")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if not (under_ci() and report.skipped and isinstance(report.longrepr, tuple)):
        return
    reason = str(report.longrepr[2]).lower()
    if any(name in reason for name in _REQUIRED_IN_CI):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which needs it: {report.longrepr[2]}"
