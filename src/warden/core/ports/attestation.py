"""Node attestation: registration entries (selectors to agent) and one-use join tokens."""

from __future__ import annotations

from typing import Protocol

from warden.core.model import JoinToken, RegistrationEntry

__all__ = ["AttestationStore"]


class AttestationStore(Protocol):
    """Registration entries and join tokens, both owned by an agent (NotFoundError if unknown)."""

    def create_entry(self, entry: RegistrationEntry) -> None:
        """NotFoundError for an unknown agent; ConflictError when an entry (of any agent) already
        has exactly these selectors."""
        ...

    def fetch_entry(self, entry_id: str) -> RegistrationEntry: ...

    def list_entries(self, *, agent: str | None = None) -> list[RegistrationEntry]:
        """Every entry (or one agent's), ordered by agent name then id."""
        ...

    def delete_entry(self, entry_id: str) -> None: ...

    def create_join_token(self, token: JoinToken) -> None:
        """NotFoundError for an unknown agent."""
        ...

    def fetch_join_token(self, token_id: str) -> JoinToken: ...

    def consume_join_token(self, token_id: str, *, now: float) -> JoinToken:
        """Mark an unused, unexpired token used in one statement and return it.

        NotFoundError when unknown; ConflictError when already used or expired (so of two
        concurrent callers exactly one wins).
        """
        ...
