"""Governance records (pure): ownership and lifecycle state, certification campaigns and their
reviews, signed audit checkpoints, export cursors, and audit search queries.

Times are epoch seconds (float, UTC) as everywhere in ``warden.core``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from warden.errors import InvalidParameterError


class FlagReason(StrEnum):
    """Why an agent was flagged for suspension."""

    UNUSED = "unused"
    END_DATE = "end_date"


@dataclass(frozen=True, slots=True)
class AgentGovernance:
    """Governance state of one agent, beside its inventory record.

    ``co_owners`` back up ``Agent.owner`` (the primary, accountable owner): when the primary
    owner leaves, an active co-owner is promoted; an agent with no active owner at all is
    orphaned (``orphaned_at``) and suspended after the grace period unless re-owned.
    """

    agent_name: str
    co_owners: tuple[str, ...] = ()
    end_date: float | None = None
    orphaned_at: float | None = None
    flagged_at: float | None = None
    flag_reason: FlagReason | None = None
    last_certified_at: float | None = None


class CampaignStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class TimeoutAction(StrEnum):
    """What happens to an agent whose review is unanswered at the deadline."""

    REDUCE = "reduce"  # keep only what the agent actually used in the period
    SUSPEND = "suspend"


class ReviewStatus(StrEnum):
    PENDING = "pending"
    KEPT = "kept"
    REDUCED = "reduced"
    REVOKED = "revoked"
    EXPIRED = "expired"  # unanswered at the deadline; the timeout action was applied


class ReviewDecision(StrEnum):
    KEEP = "keep"
    REDUCE = "reduce"
    REVOKE = "revoke"


@dataclass(frozen=True, slots=True)
class Campaign:
    id: str
    started_at: float
    started_by: str
    period_start: float  # usage is reported from here to the review's opening
    deadline: float
    on_timeout: TimeoutAction
    every: float | None = None  # seconds between campaigns; None = one-off
    status: CampaignStatus = CampaignStatus.OPEN
    closed_at: float | None = None


@dataclass(frozen=True, slots=True)
class Review:
    """One agent's entitlements put to its owner in one campaign."""

    id: str
    campaign_id: str
    agent_name: str
    owner: str
    entitlements: tuple[str, ...]
    used: tuple[str, ...]
    deadline: float
    status: ReviewStatus = ReviewStatus.PENDING
    decided_at: float | None = None
    decided_by: str | None = None
    result: tuple[str, ...] | None = None  # entitlements after the decision


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement "the chain had ``seq`` records with head ``head_hash`` at ``ts``"."""

    seq: int
    head_hash: str
    ts: float
    kid: str
    jws: str


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Attribution filters over the audit log; every given filter must match (AND).

    ``owner`` matches records of the agents the human owns (primary or co-owner);
    ``task_id`` with ``subtree`` also matches the task's delegated subtasks, recursively;
    ``on_behalf_of`` matches records of tasks run for that human; ``action`` is the tool or
    action decided on; ``decision`` is ``allow`` or ``deny``; ``policy`` is a policy id among
    a decision's reasons; ``decision_id`` the records of one decision (the decision itself, an
    approval it opened or used, findings it raised). ``since`` is inclusive, ``until`` exclusive.
    """

    type_prefix: str | None = None
    agent: str | None = None
    owner: str | None = None
    task_id: str | None = None
    subtree: bool = False
    on_behalf_of: str | None = None
    action: str | None = None
    decision: str | None = None
    policy: str | None = None
    since: float | None = None
    until: float | None = None
    decision_id: str | None = None


_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(value: str | float | int, what: str = "duration") -> float:
    """Seconds from ``90d``, ``12h``, ``30m``, ``45s``, ``2w`` or a plain number of seconds."""
    if isinstance(value, bool):
        raise InvalidParameterError(f"`{what}` must be a duration like `90d`")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.fullmatch(str(value))
        if match is None:
            raise InvalidParameterError(
                f"`{what}` must be a duration like `90d`, `12h` or `30m`, not `{str(value)[:40]}`"
            )
        seconds = float(match[1]) * _UNITS[match[2]]
    if not 0 < seconds < 100 * 365 * 86400:
        raise InvalidParameterError(f"`{what}` must be positive and under a century")
    return seconds
