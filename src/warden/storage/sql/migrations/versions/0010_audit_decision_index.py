"""Console: index audit records by decision id (``GET /v1/audit?decision_id=``, ``warden why``).

Revision ID: 0010
Revises: 0013
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_audit_events_decision_id", "audit_events", ["decision_id"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_decision_id", table_name="audit_events")
