"""Validating a file in batches, each against a schema with only the actions its policies name
(ADR 0144), reports exactly what validating the whole file against the full schema does."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from warden.authz import policy_set, validation
from warden.errors import PolicyError

TOOLS = [f"tool{i}.call" for i in range(24)]

ACTION_SCOPES = st.one_of(
    st.just("action"),
    st.sampled_from(TOOLS).map(lambda t: f'action == Action::"{t}"'),
    st.lists(st.sampled_from(TOOLS), min_size=1, max_size=3).map(
        lambda ts: "action in [" + ", ".join(f'Action::"{t}"' for t in ts) + "]"
    ),
    st.sampled_from(["GET", "POST"]).map(lambda m: f'action == Action::"{m}"'),
)
PRINCIPALS = st.sampled_from(
    ["principal", 'principal == Agent::"a"', "principal is Agent", 'principal in Group::"g"']
)
RESOURCES = st.sampled_from(
    ["resource", 'resource == Tool::"t"', "resource is Route", 'resource == Custom::"c"']
)
CONDITIONS = st.sampled_from(
    [
        "",
        'context.warden.task.category == "support"',
        'context.warden.task.categroy == "support"',  # typo: an error
        'context.warden.task.on_behalf_of == "x"',  # optional, unguarded: an error
        "context.warden.scope.contains(1)",
        'principal.name == "x"',
        'principal.nme == "x"',
        'resource.path == "/"',
        'action == Action::"tool23.call"',  # names an action outside the scope
        'context.warden.behaviour.score > "high"',
        "context.arguments.amount > 10",
    ]
)


@st.composite
def policy(draw: st.DrawFn) -> str:
    effect = draw(st.sampled_from(["permit", "forbid"]))
    head = f"{effect} ({draw(PRINCIPALS)}, {draw(ACTION_SCOPES)}, {draw(RESOURCES)})"
    conditions = draw(st.lists(CONDITIONS, max_size=2))
    body = " && ".join(c for c in conditions if c)
    note = draw(st.sampled_from(["", "// a comment\n", '@id("x")\n']))
    return f"{note}{head}" + (f"\nwhen {{ {body} }}" if body else "") + ";\n"


@contextmanager
def split(on: bool) -> Iterator[None]:
    saved = validation.SPLIT_ABOVE
    validation.SPLIT_ABOVE = -1 if on else 1 << 30
    try:
        yield
    finally:
        validation.SPLIT_ABOVE = saved


def outcome(files: dict[str, bytes]) -> list[tuple[Any, ...]]:
    """What loading reports: where each problem is, in order, and the problems themselves
    (sorted: the order of one policy's errors is Cedar's hash order)."""
    try:
        loaded = policy_set.load_policy_files(files)
    except PolicyError as exc:
        errors = exc.detail["errors"]
        assert len(errors) < policy_set.MAX_PROBLEMS  # the whole report is compared
        order = [(e["kind"], e["file"], e["line"], e["policy"]) for e in errors]
        return [*order, *sorted(tuple(sorted(e.items())) for e in errors)]
    return [("ok", tuple(sorted(loaded.policies)))]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(policy(), min_size=1, max_size=12), min_size=1, max_size=2))
def test_batched_validation_reports_what_whole_file_validation_does(
    folders: list[list[str]],
) -> None:
    files = {f"p{i}.cedar": "\n".join(texts).encode() for i, texts in enumerate(folders)}
    with split(on=False):
        whole = outcome(files)
    with split(on=True):
        batched = outcome(files)
    assert batched == whole


def test_a_large_folder_validates_in_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many tool actions: the split path runs (and finds the one typo, at its line)."""
    calls: list[int] = []
    real = policy_set._cedar.validate_policies

    def counting(text: str, schema: Any) -> list[tuple[str, str]]:
        calls.append(text.count(";"))
        return real(text, schema)

    monkeypatch.setattr(policy_set._cedar, "validate_policies", counting)
    texts = [
        f'permit (principal == Agent::"a{i}", action == Action::"tool{i % 40}.call", resource)'
        ' when { context.warden.scope.contains("x") };'
        for i in range(200)
    ]
    texts[150] = texts[150].replace("scope", "scop")
    with pytest.raises(PolicyError) as err:
        policy_set.load_policy_files({"a.cedar": "\n".join(texts).encode()})
    (problem,) = err.value.detail["errors"]
    assert (problem["line"], problem["policy"]) == (151, "a:150")
    assert "warden.scop" in problem["message"]
    assert len(calls) > 1 and max(calls) < len(texts)
