"""Store methods for distributed policy sets (ADR 0120). Part of ``SQLStore``."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from warden.core.model import PolicyPointer
from warden.errors import NotFoundError
from warden.storage.sql.engine import SQLBase
from warden.storage.sql.tables import policy_active, policy_bundles

_ACTIVE_ROW = 1


class PolicySQL(SQLBase):
    """Published bundles and the active pointer. Relies on ``SQLStore._tx`` / ``_insert``."""

    def publish_policies(
        self, revision: str, files: dict[str, str], *, at: float, by: str
    ) -> PolicyPointer:
        """Store a bundle (once per revision) and make it the active one, in one transaction."""
        text = json.dumps(files, sort_keys=True, separators=(",", ":"))
        with self._tx(write=True) as conn:
            conn.execute(
                self._insert(conn, policy_bundles)
                .values(revision=revision, files=text, created_at=float(at), created_by=by)
                .on_conflict_do_nothing(index_elements=["revision"])
            )
            values = {"revision": revision, "activated_at": float(at), "activated_by": by}
            conn.execute(
                self._insert(conn, policy_active)
                .values(id=_ACTIVE_ROW, **values)
                .on_conflict_do_update(index_elements=["id"], set_=values)
            )
        return PolicyPointer(revision, float(at), by)

    def active_policies(self) -> PolicyPointer | None:
        """The revision every replica must serve, or None when none was ever published."""
        query = sa.select(policy_active).where(policy_active.c.id == _ACTIVE_ROW)
        with self._tx(write=False) as conn:
            row = conn.execute(query).mappings().first()
        if row is None:
            return None
        return PolicyPointer(str(row["revision"]), float(row["activated_at"]), row["activated_by"])

    def policy_bundle(self, revision: str) -> dict[str, str]:
        query = sa.select(policy_bundles.c.files).where(policy_bundles.c.revision == revision)
        with self._tx(write=False) as conn:
            row = conn.execute(query).first()
        if row is None:
            raise NotFoundError(f"no policy bundle with revision `{revision}`")
        files: Any = json.loads(row[0])
        return {str(k): str(v) for k, v in files.items()}
