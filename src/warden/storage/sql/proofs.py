"""Used DPoP proofs: ``ProofStore`` over SQL (an upsert that revives only expired keys)."""

from __future__ import annotations

import sqlalchemy as sa

from warden.storage.sql.engine import SQLBase
from warden.storage.sql.tables import (
    dpop_proofs,
)


class ProofSQL(SQLBase):
    """``ProofStore``."""

    def remember_proof(self, key: str, *, expires_at: float, now: float) -> bool:
        with self._tx(write=True) as conn:
            insert = self._insert(conn, dpop_proofs).values(key=key, expires_at=float(expires_at))
            # An expired entry may be reused; a live one makes this a replay (no row back).
            # RETURNING, not rowcount: psycopg reports -1 for an upsert that did nothing.
            row = conn.execute(
                insert.on_conflict_do_update(
                    index_elements=["key"],
                    set_={"expires_at": insert.excluded.expires_at},
                    where=dpop_proofs.c.expires_at <= float(now),
                ).returning(dpop_proofs.c.key)
            ).first()
            return row is not None

    def prune_proofs(self, *, now: float) -> int:
        with self._tx(write=True) as conn:
            result = conn.execute(sa.delete(dpop_proofs).where(dpop_proofs.c.expires_at <= now))
            return int(result.rowcount or 0)
