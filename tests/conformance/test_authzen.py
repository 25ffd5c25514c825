"""AuthZEN 1.0 conformance of the decision layer, in-process (parse → map → PDP).

The HTTP-level rules (content type, malformed JSON, X-Request-ID, status codes on the
wire) are checked at the API layer with the same runner and an HTTP ``post``.
"""

from __future__ import annotations

import collections
from pathlib import Path

import pytest

from .authzen_runner import Post, Vector, certification_cases, check, interop_vectors

CERTIFICATION = certification_cases()


@pytest.mark.parametrize("case", CERTIFICATION, ids=[c.id for c in CERTIFICATION])
def test_certification_scenario(case: Vector, scenario_post: dict[str, Post]) -> None:
    check(case, scenario_post[case.scenario])


def test_interop_vector(interop_vector: Vector, scenario_post: dict[str, Post]) -> None:
    check(interop_vector, scenario_post[interop_vector.scenario])


def test_every_interop_file_is_covered(authzen_vectors: Path) -> None:
    counts = collections.Counter(
        v.id.split(":")[0].split("[")[0] for v in interop_vectors(authzen_vectors)
    )
    # Counts from the README of the vector folder.
    assert counts == {
        "todo/decisions-authorization-api-1_0-02.json": 43,
        "todo/decisions-authorization-api-1_0-01.json": 40,
        "todo/decisions-authorization-api-1_0-00.json": 40,
        "todo/decisions.json": 40,
        "api-gateway/decisions.json": 25,
        "search/subject/results.json": 60,
        "search/resource/results.json": 18,
        "search/action/results.json": 120,
        "idp/results.json": 6,
    }
