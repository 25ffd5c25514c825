"""Slicing: a sliced decision equals the unsliced one; slices are small and cached."""

from __future__ import annotations

import random
from typing import Any

import pytest

from warden.authz.pdp import PolicyDecisionPoint
from warden.authz.policy_set import load_policy_dir
from warden.authz.types import AuthzRequest, Decision, EntityRef

from .conftest import WriteDir, entity

U = EntityRef
USERS = [f"u{i}" for i in range(6)]
GROUPS = [f"g{i}" for i in range(5)]
DOCS = [f"d{i}" for i in range(6)]
FOLDERS = [f"f{i}" for i in range(3)]
ACTIONS = ["read", "write", "delete", "share"]


def _store(rng: random.Random) -> list[dict[str, Any]]:
    out = [
        entity(
            "Group",
            g,
            parents=[("Group", GROUPS[j])]
            if (j := i + 1) < len(GROUPS) and rng.random() < 0.6
            else [],
        )
        for i, g in enumerate(GROUPS)
    ]
    for u in USERS:
        parents = [("Group", g) for g in rng.sample(GROUPS, rng.randint(0, 2))]
        attrs = {"level": rng.randint(0, 5)} if rng.random() < 0.7 else {}
        out.append(entity("User", u, attrs, parents))
    out += [entity("Folder", f, parents=[("Folder", "f0")] if f != "f0" else []) for f in FOLDERS]
    for d in DOCS:
        attrs = (
            {"owner": {"__entity": {"type": "User", "id": rng.choice(USERS)}}}
            if rng.random() < 0.5
            else {}
        )
        out.append(entity("Doc", d, attrs, [("Folder", rng.choice(FOLDERS))]))
    out += [entity("Action", a, parents=[("Action", "all")]) for a in ACTIONS[:3]]
    out.append(entity("Action", "all"))
    return out


def _policy(rng: random.Random, n: int) -> str:
    principal = rng.choice(
        [
            "principal",
            f'principal == User::"{rng.choice(USERS)}"',
            f'principal in Group::"{rng.choice(GROUPS)}"',
            f'principal in User::"{rng.choice(USERS)}"',
            "principal is User",
            "principal is Group",
            f'principal is User in Group::"{rng.choice(GROUPS)}"',
            'principal == User::"nobody"',
        ]
    )
    action = rng.choice(
        [
            "action",
            f'action == Action::"{rng.choice(ACTIONS)}"',
            'action in Action::"all"',
            f'action in [Action::"{rng.choice(ACTIONS)}", Action::"{rng.choice(ACTIONS)}"]',
        ]
    )
    resource = rng.choice(
        [
            "resource",
            f'resource == Doc::"{rng.choice(DOCS)}"',
            f'resource in Folder::"{rng.choice(FOLDERS)}"',
            "resource is Doc",
            "resource is Folder",
            f'resource is Doc in Folder::"{rng.choice(FOLDERS)}"',
            f'resource in Doc::"{rng.choice(DOCS)}"',
        ]
    )
    condition = rng.choice(
        [
            "",
            " when { context.flag }",  # errors when flag is missing
            " when { principal has level && principal.level > 2 }",
            " when { context has n && context.n > 3 }",
            " when { resource has owner && resource.owner == principal }",
            " unless { context has flag && context.flag }",
        ]
    )
    effect = "forbid" if rng.random() < 0.3 else "permit"
    mode = '@mode("monitor") ' if effect == "forbid" and rng.random() < 0.3 else ""
    return f'@id("p{n}") {mode}{effect}({principal}, {action}, {resource}){condition};'


def _request(rng: random.Random) -> AuthzRequest:
    principal = rng.choice(
        [U("User", u) for u in USERS] + [U("User", "stranger"), U("Group", rng.choice(GROUPS))]
    )
    parents = tuple(U("Group", g) for g in rng.sample(GROUPS, rng.choice([0, 0, 1, 2])))
    attrs = {"level": rng.randint(0, 5)} if rng.random() < 0.4 else None
    resource = rng.choice(
        [U("Doc", d) for d in DOCS] + [U("Folder", f) for f in FOLDERS] + [U("Doc", "new")]
    )
    context: dict[str, Any] = {}
    if rng.random() < 0.7:
        context["flag"] = rng.random() < 0.5
    if rng.random() < 0.5:
        context["n"] = rng.randint(0, 6)
    return AuthzRequest(
        principal=principal,
        principal_attrs=attrs,
        principal_parents=parents,
        action=rng.choice([*ACTIONS, "all", "other"]),
        resource=resource,
        resource_attrs={"tag": "x"} if rng.random() < 0.2 else None,
        context=context,
    )


def _key(d: Decision) -> tuple[Any, ...]:
    return (d.allowed, frozenset(d.reasons), frozenset(d.errors), frozenset(d.monitored))


@pytest.mark.parametrize("seed", range(25))
def test_sliced_equals_unsliced(write_dir: WriteDir, seed: int) -> None:
    rng = random.Random(seed)
    policies = "\n".join(_policy(rng, n) for n in range(rng.randint(5, 60)))
    folder = write_dir({"p.cedar": policies, "entities.json": _store(rng)})
    lps = load_policy_dir(folder)
    sliced = PolicyDecisionPoint(lps)
    full = PolicyDecisionPoint(lps, slicing=False)
    requests = [_request(rng) for _ in range(80)]
    outcomes = set()
    for r in requests:
        a, b = sliced.evaluate(r), full.evaluate(r)
        assert _key(a) == _key(b), (r, a, b)
        outcomes.add((a.allowed, bool(a.monitored), bool(a.errors)))
    assert [_key(d) for d in sliced.evaluate_batch(requests)] == [
        _key(d) for d in full.evaluate_batch(requests)
    ]
    assert len(outcomes) > 1  # the seed exercises more than one kind of answer


def test_slices_are_small_and_shared(write_dir: WriteDir) -> None:
    lines = [
        f'@id("p{i}") permit(principal == User::"u{i}", action == Action::"t{i % 10}", resource);'
        for i in range(2000)
    ]
    lines.append('@id("everyone") forbid(principal, action, resource) when { context has stop };')
    lines.append('@id("group") permit(principal in Group::"g", action, resource is Doc);')
    folder = write_dir(
        {
            "p.cedar": "\n".join(lines),
            "entities.json": [entity("Group", "g"), entity("User", "u7", parents=[("Group", "g")])],
        }
    )
    lps = load_policy_dir(folder)
    sl = lps.slice_for("User", "u7", (), "t7", "Doc", "d")
    assert sl.ids == {"p7", "everyone", "group"}
    assert lps.slice_for("User", "u7", (), "t7", "Doc", "d") is sl
    assert lps.slice_for("User", "u7", (), "t7", "Doc", "other") is sl  # same candidate set
    assert lps.slice_for("User", "u8", (), "t7", "Tool", "x").ids == {"everyone"}
    assert lps.slice_for("User", "u1", (U("Group", "g"),), "t1", "Doc", "d").ids == {
        "p1",
        "everyone",
        "group",
    }
    pdp = PolicyDecisionPoint(lps)
    assert set(
        pdp.evaluate(
            AuthzRequest(principal=U("User", "u7"), action="t7", resource=U("Doc", "d"))
        ).reasons
    ) == {"p7", "group"}
    assert (
        pdp.evaluate(
            AuthzRequest(principal=U("User", "u7"), action="t8", resource=U("Tool", "d"))
        ).allowed
        is False
    )


def test_monitor_variant_is_cached(write_dir: WriteDir) -> None:
    folder = write_dir(
        {
            "p.cedar": '@id("a") permit(principal, action, resource);\n'
            '@id("m") @mode("monitor") forbid(principal, action, resource);'
        }
    )
    lps = load_policy_dir(folder)
    sl = lps.slice_for("User", "u", (), "x", "Doc", "d")
    assert sl.monitor_ids == {"m"}
    quiet = sl.without_monitor()
    assert quiet.ids == {"a"} and sl.without_monitor() is quiet


def test_slice_cache_is_bounded_by_policies_held(
    write_dir: WriteDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    import warden.authz.policy_set as ps

    monkeypatch.setattr(ps, "SLICE_CACHE_POLICIES", 12)
    lines = [f'@id("p{i}") permit(principal == User::"u{i}", action, resource);' for i in range(20)]
    lines.append('@id("all") forbid(principal, action, resource) when { context has stop };')
    lps = load_policy_dir(write_dir({"p.cedar": "\n".join(lines)}))
    for i in range(20):
        assert lps.slice_for("User", f"u{i}", (), "a", "Doc", "d").ids == {f"p{i}", "all"}
    assert len(lps._slices) == 4  # 3 per entry (2 policies + 1): 4 entries fit in 12
    # the most recent entries survive, an evicted shape is rebuilt on demand
    assert lps._slices.get(("User", "u19", (), "a", "Doc", "d")) is not None
    assert lps._slices.get(("User", "u0", (), "a", "Doc", "d")) is None
    assert lps.slice_for("User", "u0", (), "a", "Doc", "d").ids == {"p0", "all"}


def test_full_set_is_built_lazily_and_shared(write_dir: WriteDir) -> None:
    lps = load_policy_dir(write_dir({"p.cedar": '@id("a") permit(principal, action, resource);'}))
    assert lps._full is None
    sl = lps.slice_for("User", "u", (), "a", "Doc", "d")
    assert sl is lps.full and lps._full is sl


def test_entity_cache_shrinks_with_the_store(write_dir: WriteDir) -> None:
    small = load_policy_dir(write_dir({"entities.json": [entity("G", "g")]}))
    big = load_policy_dir(
        write_dir({"entities.json": [entity("G", f"g{i}") for i in range(20000)]})
    )
    assert small.entity_cache_size == 4096
    assert 16 <= big.entity_cache_size < 100
