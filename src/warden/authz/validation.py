"""Validating a policy file against the schema without the cost growing as policies x actions.

Cedar's validator type-checks each policy once per *request environment* its scope can match,
but it finds those by walking every environment the schema has: each action times its
principal types times its resource types. Without a user schema, Warden declares every tool
action the policies name (``schema.py``), so a folder of ``n`` policies naming ``n / 10``
tools costs ``O(n**2)``: 12 s for 1,000 policies in one file, and a 10,000-policy folder
could not be loaded.

A policy whose action scope names its actions (``action == Action::"x"``,
``action in [...]``) can only match environments of the actions it names, so validating it
against a schema that declares only those (plus everything else Warden declares) gives the
same environments, hence the same errors. ``validate_by_actions`` groups a file's policies by
the actions they name, packs the groups into batches (``BATCH_BUDGET``), validates each batch
(its statements cut from the file, in order) against a schema with only the batch's actions,
and maps Cedar's positional ``policy<N>`` ids of the batch back to the file's. A policy with an
unscoped action (``action``), or naming an action the full schema does not declare (Cedar then
checks it under every action), is validated against
the full schema. The result is in file order, as Cedar's own (the order of one policy's
errors is Cedar's hash order either way). ADR 0144.

With a user schema nothing is auto-declared and the user's actions are kept whole: the file
is validated in one call, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from . import _cedar, source

__all__ = ["BATCH_BUDGET", "SPLIT_ABOVE", "ActionNeeds", "needs_of", "validate_by_actions"]

# Validating one policy costs about a quarter of a millisecond per action the schema declares
# (Cedar walks 64 request environments per auto-declared action), parsing one schema about
# 4 ms: batches are packed while policies x actions stays within this budget, so a tool
# named by many policies gets a schema of its own and rarely named ones share (ADR 0144).
BATCH_BUDGET = 32
# below this many auto-declared actions one call per file costs less than splitting
SPLIT_ABOVE = 16

# what a policy needs declared to validate: the actions it names, or None (unscoped action)
ActionNeeds = frozenset[str] | None

SchemaFor = Callable[[frozenset[str]], _cedar.SchemaHandle]


def validate_by_actions(
    text: str,
    stmts: Sequence[source.Statement],
    needs: Mapping[int, ActionNeeds],
    full: _cedar.SchemaHandle,
    schema_for: SchemaFor,
) -> list[tuple[str, str]] | None:
    """Cedar's ``[(policy<N>, message)]`` for ``text``, or None when it cannot be split.

    ``needs`` maps each statement index to the actions its policy names (None: unscoped);
    ``schema_for(actions)`` is the schema declaring only those of the auto-declared actions.
    None means the statements do not line up with the parsed policies (then validate whole).
    """
    if len(needs) != len(stmts) or any(i not in needs for i in range(len(stmts))):
        return None
    unscoped: list[int] = []
    groups: dict[frozenset[str], list[int]] = {}
    for index in range(len(stmts)):
        want = needs[index]
        if want is None:
            unscoped.append(index)
        else:
            groups.setdefault(want, []).append(index)
    found: list[tuple[int, str, str]] = []
    if unscoped:
        found += _validate(text, stmts, unscoped, full)
    for actions, indices in _batches(groups):
        found += _validate(text, stmts, indices, schema_for(actions))
    found.sort(key=lambda item: item[0])  # stable: a policy's own errors keep their order
    return [(pid, message) for _, pid, message in found]


def _batches(
    groups: Mapping[frozenset[str], list[int]],
) -> Iterable[tuple[frozenset[str], list[int]]]:
    """Groups packed in file order into batches of at most ``BATCH_BUDGET`` policy-actions
    (policies x actions declared; a group over the budget is a batch of its own)."""
    actions: set[str] = set()
    indices: list[int] = []
    for want, members in sorted(groups.items(), key=lambda item: item[1][0]):
        merged = actions | want
        if indices and (len(indices) + len(members)) * len(merged) > BATCH_BUDGET:
            yield frozenset(actions), indices
            actions, indices, merged = set(), [], set(want)
        actions = merged
        indices += members
    if indices:
        yield frozenset(actions), indices


def _validate(
    text: str,
    stmts: Sequence[source.Statement],
    indices: list[int],
    schema: _cedar.SchemaHandle,
) -> list[tuple[int, str, str]]:
    """Validate the statements ``indices`` of ``text`` together: (file index, id, message)."""
    indices = sorted(indices)
    chunk = "\n".join(text[stmts[i].start : stmts[i].end] for i in indices)
    out = []
    for local_id, message in _cedar.validate_policies(chunk, schema):
        local = int(local_id.removeprefix("policy"))
        index = indices[local]
        pid = f"policy{index}"
        out.append((index, pid, message.replace(f"`{local_id}`", f"`{pid}`")))
    return out


def needs_of(body: Mapping[str, object], named_actions: Iterable[str]) -> ActionNeeds:
    """What an EST policy body needs declared: the actions it names, None when unscoped."""
    scope = body.get("action")
    if not isinstance(scope, Mapping) or scope.get("op") == "All":
        return None
    return frozenset(named_actions)
