"""The peer benchmark compares engines on "equal" rule sets; these check the Cedar rendering of
the generator against its own reference evaluator, so a mismatch in the benchmark points at a
peer's rendering (or at Warden), not at the generator."""

from __future__ import annotations

import cedarpy
import pytest
from bench.peers import rules as r

EMPTY = cedarpy.Entities.from_json_str("[]")


@pytest.mark.parametrize("size", [1, 2, 100, 1000])
def test_full_and_indexed_cedar_sets_answer_like_the_reference(size: int) -> None:
    rs = r.RuleSet(size)
    full = cedarpy.PolicySet.from_str(r.cedar_text(rs))
    for req in r.sample_requests(rs):
        indexed = cedarpy.PolicySet.from_str(r.cedar_agent_text(rs, req.agent))
        want = r.decide(rs, req)
        assert cedarpy.is_authorized(r.cedar_request(req), full, EMPTY).allowed is want, req
        assert cedarpy.is_authorized(r.cedar_request(req), indexed, EMPTY).allowed is want, req


@pytest.mark.parametrize("size", [1, 100, 1000, 10_000])
def test_a_size_has_that_many_rules_and_the_sample_has_both_answers(size: int) -> None:
    rs = r.RuleSet(size)
    assert rs.n_rules == size
    assert sum(text.count(";\n") for text in r.cedar_files(rs).values()) == size
    answers = {r.decide(rs, req) for req in r.sample_requests(rs)}
    assert answers == {True, False}
    assert r.decide(rs, r.timed_request(rs)) is True


def test_the_guard_denies_over_the_limit_and_allows_at_it() -> None:
    rs = r.RuleSet(100)
    a, t = rs.grants[0]
    assert r.decide(rs, r.Request(a, t, r.GUARD_LIMIT)) is True
    assert r.decide(rs, r.Request(a, t, r.GUARD_LIMIT + 1)) is False
    assert r.decide(rs, r.Request(a, r.unknown_tool(rs), 1)) is False
