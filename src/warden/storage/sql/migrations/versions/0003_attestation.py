"""Workload attestation: registration entries and one-time join tokens.

Revision ID: 0003
Revises: 0001
Create Date: 2025-01-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "registration_entries",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("agent_name", sa.String(), nullable=False),
        sa.Column("selectors", sa.Text(), nullable=False),
        sa.Column("selectors_key", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_registration_entries"),
        sa.ForeignKeyConstraint(
            ["agent_name"], ["agents.name"], name="fk_registration_entries_agent_name_agents"
        ),
        sa.UniqueConstraint("selectors_key", name="uq_registration_entries_selectors_key"),
    )
    op.create_index("ix_registration_entries_agent_name", "registration_entries", ["agent_name"])
    op.create_table(
        "join_tokens",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("agent_name", sa.String(), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("used_at", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_join_tokens"),
        sa.ForeignKeyConstraint(
            ["agent_name"], ["agents.name"], name="fk_join_tokens_agent_name_agents"
        ),
    )
    op.create_index("ix_join_tokens_agent_name", "join_tokens", ["agent_name"])


def downgrade() -> None:
    op.drop_table("join_tokens")
    op.drop_table("registration_entries")
