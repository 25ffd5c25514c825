"""Registration entries and join tokens: ``AttestationStore`` over SQL."""

from __future__ import annotations

import hashlib
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from warden.core.model import (
    JoinToken,
    RegistrationEntry,
)
from warden.errors import (
    ConflictError,
    NotFoundError,
)
from warden.storage.sql.codec import dump as _dump
from warden.storage.sql.codec import load_tuple as _load_tuple
from warden.storage.sql.engine import SQLBase
from warden.storage.sql.rows import fetch_one
from warden.storage.sql.tables import (
    agents,
    join_tokens,
    registration_entries,
)


def _entry_row(e: RegistrationEntry) -> dict[str, Any]:
    selectors = _dump(sorted(e.selectors))
    return {
        "id": e.id,
        "agent_name": e.agent_name,
        "selectors": selectors,
        "selectors_key": hashlib.sha256(selectors.encode()).hexdigest(),
        "created_at": float(e.created_at),
        "created_by": e.created_by,
        "description": e.description,
    }


def _entry(m: RowMapping) -> RegistrationEntry:
    return RegistrationEntry(
        id=m["id"],
        agent_name=m["agent_name"],
        selectors=_load_tuple(m["selectors"]),
        created_at=m["created_at"],
        created_by=m["created_by"],
        description=m["description"],
    )


def _join_token(m: RowMapping) -> JoinToken:
    return JoinToken(
        id=m["id"],
        agent_name=m["agent_name"],
        secret_hash=m["secret_hash"],
        created_at=m["created_at"],
        expires_at=m["expires_at"],
        created_by=m["created_by"],
        used_at=m["used_at"],
    )


class AttestationSQL(SQLBase):
    """``AttestationStore``: registration entries and join tokens."""

    def create_entry(self, entry: RegistrationEntry) -> None:
        row = _entry_row(entry)
        with self._tx(write=True, conflict=f"entry `{entry.id}` already exists") as conn:
            owner = conn.execute(
                sa.select(agents.c.name).where(agents.c.name == entry.agent_name)
            ).scalar_one_or_none()
            if owner is None:
                raise NotFoundError(f"agent `{entry.agent_name}` not found")
            holder = conn.execute(
                sa.select(registration_entries.c.id, registration_entries.c.agent_name).where(
                    registration_entries.c.selectors_key == row["selectors_key"]
                )
            ).first()
            if holder is not None:
                raise ConflictError(
                    f"entry `{holder[0]}` of agent `{holder[1]}` already has these selectors"
                )
            conn.execute(sa.insert(registration_entries).values(**row))

    def fetch_entry(self, entry_id: str) -> RegistrationEntry:
        return _entry(
            fetch_one(
                self._tx,
                sa.select(registration_entries).where(registration_entries.c.id == entry_id),
                f"entry `{entry_id}` not found",
            )
        )

    def list_entries(self, *, agent: str | None = None) -> list[RegistrationEntry]:
        query = sa.select(registration_entries).order_by(
            registration_entries.c.agent_name, registration_entries.c.id
        )
        if agent is not None:
            query = query.where(registration_entries.c.agent_name == agent)
        with self._tx(write=False) as conn:
            return [_entry(m) for m in conn.execute(query).mappings()]

    def delete_entry(self, entry_id: str) -> None:
        with self._tx(write=True) as conn:
            result = conn.execute(
                sa.delete(registration_entries).where(registration_entries.c.id == entry_id)
            )
            if result.rowcount == 0:
                raise NotFoundError(f"entry `{entry_id}` not found")

    def create_join_token(self, token: JoinToken) -> None:
        row = {
            "id": token.id,
            "agent_name": token.agent_name,
            "secret_hash": token.secret_hash,
            "created_at": float(token.created_at),
            "expires_at": float(token.expires_at),
            "created_by": token.created_by,
            "used_at": None if token.used_at is None else float(token.used_at),
        }
        with self._tx(write=True, conflict=f"join token `{token.id}` already exists") as conn:
            owner = conn.execute(
                sa.select(agents.c.name).where(agents.c.name == token.agent_name)
            ).scalar_one_or_none()
            if owner is None:
                raise NotFoundError(f"agent `{token.agent_name}` not found")
            conn.execute(sa.insert(join_tokens).values(**row))

    def fetch_join_token(self, token_id: str) -> JoinToken:
        return _join_token(
            fetch_one(
                self._tx,
                sa.select(join_tokens).where(join_tokens.c.id == token_id),
                f"join token `{token_id}` not found",
            )
        )

    def consume_join_token(self, token_id: str, *, now: float) -> JoinToken:
        """Mark the token used, atomically: one caller wins, every other gets ConflictError."""
        c = join_tokens.c
        with self._tx(write=True) as conn:
            updated = conn.execute(
                sa.update(join_tokens)
                .where(c.id == token_id, c.used_at.is_(None), c.expires_at > float(now))
                .values(used_at=float(now))
            )
            row = conn.execute(sa.select(join_tokens).where(c.id == token_id)).mappings().first()
            if row is None:
                raise NotFoundError(f"join token `{token_id}` not found")
            token = _join_token(row)
            if updated.rowcount == 0:
                state = "already used" if token.used_at is not None else "expired"
                raise ConflictError(f"join token `{token_id}` is {state}")
            return token
