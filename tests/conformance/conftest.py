"""Conformance fixtures: one PDP per scenario fixture folder, and the interop vectors."""

from __future__ import annotations

from pathlib import Path

import pytest

from warden.authz.pdp import PolicyDecisionPoint
from warden.authz.policy_set import load_policy_dir

from .authzen_runner import FIXTURES, Post, interop_vectors, vectors_dir
from .inprocess import make_post

_NO_VECTORS = (
    "AuthZEN interop vectors not found: expected shared/conformance/authzen next to the "
    "repository (or set WARDEN_AUTHZEN_VECTORS)"
)


@pytest.fixture(scope="session")
def authzen_vectors() -> Path:
    found = vectors_dir()
    if found is None:
        pytest.skip(_NO_VECTORS)
    return found


@pytest.fixture(scope="session")
def scenario_post() -> dict[str, Post]:
    """``post`` callables by scenario (fixture folder name), one PDP each."""
    return {
        folder.name: make_post(PolicyDecisionPoint(load_policy_dir(folder)))
        for folder in sorted(FIXTURES.iterdir())
        if folder.is_dir()
    }


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "interop_vector" not in metafunc.fixturenames:
        return
    base = vectors_dir()
    if base is None:
        metafunc.parametrize(
            "interop_vector", [pytest.param(None, marks=pytest.mark.skip(reason=_NO_VECTORS))]
        )
        return
    vectors = list(interop_vectors(base))
    metafunc.parametrize("interop_vector", vectors, ids=[v.id for v in vectors])
