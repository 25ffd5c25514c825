"""Reading step-up requirements from the annotations of the forbids that denied a request.

A deny becomes *approval required* only when every determining policy carries
``@approval(...)`` (and Cedar reported no evaluation error — an erroring guard is a plain
deny). Annotations:

* ``@approval("owner")`` — the agent's owner approves; ``@approval("group:security")`` — a
  member of that approver group; ``@approval("approvers")`` — any operator with the approver
  role. Levels chain with ``>``: ``@approval("owner > group:security")`` escalates from the
  owner to the security group.
* ``@escalate_after("10m")`` — how long each level has before the next one is asked; when the
  last level times out the request is denied.
* ``@separation_of_duties`` (any value but ``"false"``) — the human the task acts for
  (``on_behalf_of``) may not approve it.

Several approval forbids combine: their levels in order of first appearance (policies sorted
by id), the shortest ``escalate_after``, separation of duties if any asks for it. The risk
tier's configured chain is appended (``approvals.escalation.<tier>``). An annotation that
does not parse makes the deny a plain deny (fail closed).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from warden.core.duration import parse_duration
from warden.core.ids import full_match

OWNER_LEVEL = "owner"
APPROVERS_LEVEL = "approvers"
_GROUP = re.compile(r"group:[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


@dataclass(frozen=True)
class ApprovalSettings:
    grant_ttl: float = 300.0  # how long an approved grant may be spent
    escalate_after: float = 900.0  # default time per escalation level
    deny_cooldown: float = 600.0  # a denied action is not asked again for this long
    max_pending_per_agent: int = 10
    requests_per_hour: int = 30  # new requests per agent per hour (flood guard)
    separation_of_duties: bool = False  # for every request, not only annotated ones
    sweep_interval: float = 1.0
    escalation: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # by risk tier
    groups: Mapping[str, frozenset[str]] = field(default_factory=dict)  # approver groups


@dataclass(frozen=True)
class Requirement:
    """What an approval-required decision needs: who, in which order, how fast."""

    chain: tuple[str, ...]
    escalate_after: float | None
    separation_of_duties: bool
    policies: tuple[str, ...]
    source: str = "policy"


def parse_level(text: str) -> str:
    """One escalation level, normalised; ValueError when it is not one Warden knows."""
    level = text.strip()
    if level in (OWNER_LEVEL, APPROVERS_LEVEL) or full_match(_GROUP, level):
        return level
    raise ValueError(f"`{text}` is not an approval level: use owner, approvers or group:<name>")


def _chain(annotation: str) -> list[str]:
    levels = [parse_level(part) for part in annotation.split(">")]
    if not levels:
        raise ValueError("empty approval chain")
    return levels


def requirement_from(
    reasons: Sequence[str],
    annotations: Mapping[str, Mapping[str, str]],
    *,
    errors: Sequence[str] = (),
) -> Requirement | None:
    """The requirement behind a deny, or None when it is a plain deny."""
    if not reasons or errors:
        return None
    chain: list[str] = []
    after: float | None = None
    separation = False
    for pid in sorted(reasons):
        notes = annotations.get(pid) or {}
        raw = notes.get("approval")
        if raw is None:
            return None
        try:
            for level in _chain(raw):
                if level not in chain:
                    chain.append(level)
            if "escalate_after" in notes:
                seconds = parse_duration(notes["escalate_after"])
                after = seconds if after is None else min(after, seconds)
        except ValueError:
            return None
        if "separation_of_duties" in notes and notes["separation_of_duties"].lower() != "false":
            separation = True
    return Requirement(tuple(chain), after, separation, tuple(sorted(reasons)))


def extend_chain(chain: Sequence[str], extra: Sequence[str]) -> tuple[str, ...]:
    """``chain`` followed by the levels of ``extra`` it does not have yet."""
    out = list(chain)
    for level in extra:
        if level not in out:
            out.append(level)
    return tuple(out)
