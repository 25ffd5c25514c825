"""Policy distribution: published policy bundles and the active revision (ADR 0120).

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "policy_bundles",
        sa.Column("revision", sa.String(64), nullable=False),
        sa.Column("files", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("revision", name="pk_policy_bundles"),
    )
    op.create_table(
        "policy_active",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("revision", sa.String(64), nullable=False),
        sa.Column("activated_at", sa.Double(), nullable=False),
        sa.Column("activated_by", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_policy_active"),
    )


def downgrade() -> None:
    op.drop_table("policy_active")
    op.drop_table("policy_bundles")
