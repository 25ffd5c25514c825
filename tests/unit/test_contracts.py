"""The import contracts say what they check (ADR 0153): the confined libraries are named, every
top-level package is placed, and the SDK loads no server module at run time either."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from warden.core.reasons import deny_reason
from warden.errors import AccessDeniedError

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def _contracts() -> list[dict[str, Any]]:
    contracts: list[dict[str, Any]] = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"][
        "contracts"
    ]
    return contracts


def test_every_confined_library_has_a_protected_contract() -> None:
    confined = {
        lib: c["allowed_importers"]
        for c in _contracts()
        if c["type"] == "protected"
        for lib in c["protected_modules"]
    }
    assert confined["sqlalchemy"] == confined["alembic"] == ["warden.storage"]
    assert confined["jwt"] == ["warden.tokens._jose"]
    assert confined["cedarpy"] == ["warden.authz._cedar"]
    assert confined["redis"] == ["warden.storage.redis_counters"]
    assert "warden.storage" in confined["psycopg"]
    assert "warden.api" in confined["starlette"] and "warden.api" in confined["fastapi"]


def test_the_layers_contract_places_every_top_level_package() -> None:
    (layers,) = [c for c in _contracts() if c["type"] == "layers"]
    assert layers["containers"] == ["warden"] and layers["exhaustive"] is True
    assert layers["layers"][-2:] == ["core", "errors"]


def test_importing_the_sdk_loads_no_server_module() -> None:
    code = (
        "import sys, warden.sdk, warden.sdk.signals, warden.sdk.policies, warden.sdk.approvals\n"
        "print(' '.join(sorted(sys.modules)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout.split()
    server = ("warden.service", "warden.storage", "warden.api", "warden.authz", "warden.embedded")
    server += ("warden.bootstrap", "warden.config", "sqlalchemy", "starlette", "fastapi", "cedarpy")
    assert [m for m in loaded if m.startswith(server)] == []


@pytest.mark.parametrize(
    "context",
    [{}, {"reason": "allowed"}, {"reason": ""}, {"reason": 3}, {"reason": "out_of_scope"}],
)
def test_access_denied_reads_the_reason_as_the_enforcement_points_do(
    context: dict[str, Any],
) -> None:
    # errors.py spells the rule out (it is the bottom layer); core.reasons owns it
    assert AccessDeniedError("denied", decision={"context": context}).reason == deny_reason(context)
