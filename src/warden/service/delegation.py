"""Delegation rules for agent swarms (RFC 8693 §4.1 ``act``, §4.4 ``may_act``).

A child task is started with the child agent's own workload identity as ``subject_token`` and a
live task credential of the parent as ``actor_token``. The rules, checked in this order:

1. ``cycle`` — the child agent already appears in the parent's chain (an agent cannot act, even
   indirectly, on a task it is already part of; this includes delegating to itself);
2. ``too_deep`` — the child would be more than ``max_depth`` delegations from the root task;
3. ``may_act`` — when the child's identity evidence carries a ``may_act`` claim, the parent
   agent must be the one it names (``sub``, and ``iss`` when given);
4. ``scope`` — every requested scope entry must be inside the parent credential's scope (the
   child never gets more than its parent holds; its own entitlements narrow it further).

A chain lists SPIFFE IDs root first; the credential's ``act`` claim nests them most recent first.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

DEFAULT_MAX_DEPTH = 3


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: str  # cycle, too_deep, may_act, scope_exceeded
    message: str
    oauth_error: str


def check_delegation(
    *,
    parent_chain: Sequence[str],
    child: str,
    requested: Collection[str],
    parent_scope: Collection[str],
    may_act: Any,
    actor_issuer: str,
    max_depth: int,
) -> Refusal | None:
    """The first rule the delegation breaks, or None (see the module docstring)."""
    if child in parent_chain:
        return Refusal(
            "cycle",
            "the child agent is already part of this delegation chain",
            "invalid_request",
        )
    if len(parent_chain) > max_depth:
        return Refusal(
            "too_deep",
            f"delegation chains may be at most {max_depth} deep",
            "invalid_request",
        )
    if may_act is not None:
        parent = parent_chain[-1]
        if (
            not isinstance(may_act, dict)
            or may_act.get("sub") != parent
            or may_act.get("iss", actor_issuer) != actor_issuer
        ):
            return Refusal(
                "may_act",
                "the subject token's `may_act` does not name the actor",
                "invalid_request",
            )
    extra = sorted(set(requested) - set(parent_scope))
    if extra:
        return Refusal(
            "scope_exceeded",
            f"a subtask may not ask for more than its parent holds: `{extra[0]}`",
            "invalid_scope",
        )
    return None


def act_claim(ancestors: Sequence[str]) -> dict[str, Any] | None:
    """The RFC 8693 ``act`` claim for a task whose ancestors' agents are ``ancestors`` (root
    first): the outermost ``act`` is the most recent actor (the parent)."""
    act: dict[str, Any] | None = None
    for sub in ancestors:
        act = {"sub": sub} if act is None else {"sub": sub, "act": act}
    return act
