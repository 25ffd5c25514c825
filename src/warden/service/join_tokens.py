"""Creating join tokens: one-time, short-lived bootstrap secrets for one agent."""

from __future__ import annotations

import secrets

from warden.attestation.join_token import secret_hash
from warden.core.clock import Clock
from warden.core.ids import new_id, validate_agent_name
from warden.core.model import AgentStatus, JoinToken
from warden.core.ports import Store
from warden.errors import ConflictError, InvalidParameterError
from warden.service.auditing import Auditor

DEFAULT_TTL = 600.0
MIN_TTL = 10.0
MAX_TTL = 86400.0


class JoinTokenService:
    def __init__(self, store: Store, auditor: Auditor, clock: Clock) -> None:
        self._store = store
        self._audit = auditor
        self._clock = clock

    def create(self, agent_name: str, ttl: object, actor: str) -> tuple[JoinToken, str]:
        """A new token for the agent; returns the record and the token (shown once, never kept)."""
        agent = self._store.fetch_agent(validate_agent_name(agent_name))
        if agent.status is not AgentStatus.ACTIVE:
            raise ConflictError(f"agent `{agent.name}` is {agent.status.value}")
        if ttl is None:
            ttl = DEFAULT_TTL
        if (
            isinstance(ttl, bool)
            or not isinstance(ttl, int | float)
            or not (MIN_TTL <= ttl <= MAX_TTL)
        ):
            raise InvalidParameterError(
                f"`ttl` must be between {MIN_TTL:g} and {MAX_TTL:g} seconds",
                detail={"field": "ttl"},
            )
        now = self._clock.now()
        token_id = new_id("jt")
        token = f"{token_id}.{secrets.token_urlsafe(32)}"
        record = JoinToken(
            id=token_id,
            agent_name=agent.name,
            secret_hash=secret_hash(token),
            created_at=now,
            expires_at=now + float(ttl),
            created_by=actor,
        )
        self._store.create_join_token(record)
        self._audit.record(
            "agent.join_token_created",
            actor,
            {"join_token": record.id, "expires_at": record.expires_at},
            agent=agent.name,
        )
        return record, token
