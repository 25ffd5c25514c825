"""Integrity: agent manifest declarations and MCP tool-definition pins (issue 14).

Revision ID: 0011
Revises: 0012
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0008"  # landed after 0013, 0010, 0012 and 0008
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agent_manifests",
        sa.Column("agent_name", sa.String(), nullable=False),
        sa.Column("declaration", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.Column("updated_by", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("agent_name", name="pk_agent_manifests"),
    )
    op.create_table(
        "mcp_tool_pins",
        sa.Column("server", sa.String(), nullable=False),
        sa.Column("tool", sa.String(), nullable=False),
        sa.Column("digest", sa.String(), nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("approved_by", sa.String(), nullable=False),
        sa.Column("approved_at", sa.Double(), nullable=False),
        sa.Column("observed_digest", sa.String(), nullable=True),
        sa.Column("observed_definition", sa.Text(), nullable=True),
        sa.Column("observed_at", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("server", "tool", name="pk_mcp_tool_pins"),
    )


def downgrade() -> None:
    op.drop_table("mcp_tool_pins")
    op.drop_table("agent_manifests")
