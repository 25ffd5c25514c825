"""Approvals, behavioural findings and baselines; operators linked to a human.

Revision ID: 0005
Revises: 0003
Create Date: 2026-01-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("operators") as batch:
        batch.add_column(sa.Column("human", sa.String(), nullable=True))

    op.create_table(
        "approvals",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("agent", sa.String(), nullable=False),
        sa.Column("owner", sa.String(), nullable=False),
        sa.Column("task_id", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("resource_type", sa.String(), nullable=False),
        sa.Column("resource_id", sa.String(), nullable=False),
        sa.Column("arguments", sa.Text(), nullable=False),
        sa.Column("policies", sa.Text(), nullable=False),
        sa.Column("chain", sa.Text(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("escalate_after", sa.Double(), nullable=False),
        sa.Column("escalate_at", sa.Double(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("on_behalf_of", sa.String(), nullable=True),
        sa.Column("separation_of_duties", sa.Boolean(), nullable=False),
        sa.Column("evaluation_id", sa.String(), nullable=True),
        sa.Column("coalesced", sa.Integer(), nullable=False),
        sa.Column("decided_by", sa.String(), nullable=True),
        sa.Column("decided_at", sa.Double(), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=False),
        sa.Column("decision_auth", sa.Text(), nullable=False),
        sa.Column("seen", sa.Text(), nullable=False),
        sa.Column("grant_expires_at", sa.Double(), nullable=True),
        sa.Column("used_at", sa.Double(), nullable=True),
        sa.Column("used_by_decision", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_approvals"),
    )
    op.create_index("ix_approvals_status_created_at", "approvals", ["status", "created_at"])
    op.create_index("ix_approvals_agent_created_at", "approvals", ["agent", "created_at"])
    op.create_index("ix_approvals_digest", "approvals", ["digest"])
    op.create_index("ix_approvals_updated_at", "approvals", ["updated_at"])

    op.create_table(
        "findings",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("agent", sa.String(), nullable=False),
        sa.Column("detector", sa.String(), nullable=False),
        sa.Column("severity", sa.String(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("facts", sa.Text(), nullable=False),
        sa.Column("task_id", sa.String(), nullable=True),
        sa.Column("decision_id", sa.String(), nullable=True),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("actions", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_findings"),
    )
    op.create_index("ix_findings_agent_created_at", "findings", ["agent", "created_at"])
    op.create_index("ix_findings_created_at_id", "findings", ["created_at", "id"])

    op.create_table(
        "agent_baselines",
        sa.Column("agent", sa.String(), nullable=False),
        sa.Column("declared", sa.Text(), nullable=False),
        sa.Column("learned", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("agent", name="pk_agent_baselines"),
    )


def downgrade() -> None:
    op.drop_table("agent_baselines")
    op.drop_index("ix_findings_created_at_id", table_name="findings")
    op.drop_index("ix_findings_agent_created_at", table_name="findings")
    op.drop_table("findings")
    for name in ("updated_at", "digest", "agent_created_at", "status_created_at"):
        op.drop_index(f"ix_approvals_{name}", table_name="approvals")
    op.drop_table("approvals")
    with op.batch_alter_table("operators") as batch:
        batch.drop_column("human")
