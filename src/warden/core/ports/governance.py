"""Governance (issue 7): owners' lifecycle state of agents, certification campaigns and reviews."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from warden.core.governance import AgentGovernance, Campaign, Review, ReviewStatus

__all__ = ["GovernanceStore"]


class GovernanceStore(Protocol):
    """Per-agent governance state, certification campaigns and their reviews."""

    def fetch_governance(self, agent_name: str) -> AgentGovernance:
        """The agent's governance state; an empty one when nothing was stored yet."""
        ...

    def put_governance(self, governance: AgentGovernance) -> None:
        """Insert or replace the agent's governance state and its co-owner list."""
        ...

    def agents_owned_by(self, human_id: str) -> list[str]:
        """Names of agents whose primary owner or co-owner is ``human_id``."""
        ...

    def last_activity(self) -> dict[str, float]:
        """Per agent name, the start time of its newest task (agents never used are absent)."""
        ...

    def create_campaign(self, campaign: Campaign, reviews: Sequence[Review]) -> None:
        """Insert an open campaign with its reviews; ConflictError if one is already open."""
        ...

    def fetch_campaign(self, campaign_id: str) -> Campaign: ...

    def list_campaigns(self, *, limit: int = 100) -> list[Campaign]:
        """Newest first."""
        ...

    def close_campaign(self, campaign_id: str, *, closed_at: float) -> Campaign:
        """Mark an open campaign closed; ConflictError if it is not open."""
        ...

    def fetch_review(self, review_id: str) -> Review: ...

    def list_reviews(
        self,
        *,
        campaign_id: str | None = None,
        status: ReviewStatus | None = None,
        agent: str | None = None,
        due_before: float | None = None,
    ) -> list[Review]:
        """Ordered by deadline, then agent name."""
        ...

    def decide_review(self, review: Review) -> None:
        """Store a decided review; ConflictError unless the stored one is still pending."""
        ...
