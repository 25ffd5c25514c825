"""Helpers for authz tests: write a policy folder, build a PDP over it."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from warden.authz.pdp import PolicyDecisionPoint
from warden.authz.policy_set import LoadedPolicySet, load_policy_dir

WriteDir = Callable[..., Path]


@pytest.fixture
def write_dir(tmp_path: Path) -> WriteDir:
    """``write_dir({"a.cedar": "...", "entities.json": [...]}, name="x") -> folder``."""
    counter = [0]

    def write(files: dict[str, Any], name: str | None = None) -> Path:
        counter[0] += 1
        folder = tmp_path / (name or f"policies{counter[0]}")
        folder.mkdir(exist_ok=True)
        for file, content in files.items():
            text = content if isinstance(content, str) else json.dumps(content)
            (folder / file).write_text(text, encoding="utf-8")
        return folder

    return write


@pytest.fixture
def make_pdp(write_dir: WriteDir) -> Callable[..., PolicyDecisionPoint]:
    def make(policies: str, entities: list[Any] | None = None, **kw: Any) -> PolicyDecisionPoint:
        files: dict[str, Any] = {"policies.cedar": policies}
        if entities is not None:
            files["entities.json"] = entities
        return PolicyDecisionPoint(load(write_dir(files)), **kw)

    return make


def load(folder: Path) -> LoadedPolicySet:
    return load_policy_dir(folder)


def entity(
    t: str, i: str, attrs: dict[str, Any] | None = None, parents: Sequence[tuple[str, str]] = ()
) -> dict[str, Any]:
    return {
        "uid": {"type": t, "id": i},
        "attrs": attrs or {},
        "parents": [{"type": pt, "id": pi} for pt, pi in parents],
    }
