"""Agents and their human owners."""

from __future__ import annotations

from typing import Protocol

from warden.core.model import Agent, AgentStatus, Human, HumanStatus

__all__ = ["AgentStore", "HumanStore"]


class HumanStore(Protocol):
    """The people who own agents (``Human``): created on first mention, never deleted."""

    def upsert_human(self, human: Human) -> Human:
        """Insert the human if unknown; return the stored row (existing rows are unchanged)."""
        ...

    def fetch_human(self, human_id: str) -> Human: ...

    def update_human(self, human: Human) -> None: ...

    def list_humans(
        self, *, status: HumanStatus | None = None, after: str | None = None, limit: int = 100
    ) -> list[Human]:
        """Ordered by id; ``after`` is the last id of the previous page."""
        ...


class AgentStore(Protocol):
    """Registered agents, unique by name and by SPIFFE ID."""

    def create_agent(self, agent: Agent) -> None:
        """ConflictError if the name or the SPIFFE ID is taken (by any agent, in any status)."""
        ...

    def fetch_agent(self, name: str) -> Agent: ...

    def fetch_agent_by_spiffe_id(self, spiffe_id: str) -> Agent: ...

    def list_agents(
        self,
        *,
        status: AgentStatus | None = None,
        owner: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[Agent]:
        """Ordered by name; ``after`` is the last name of the previous page."""
        ...

    def update_agent(self, agent: Agent) -> None:
        """Replace the agent row by name (NotFoundError if absent)."""
        ...
