"""Governance: agent lifecycle state and co-owners, certification campaigns and reviews, signed
audit checkpoints, export cursors, and task indexes for attribution queries.

Revision ID: 0007
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SeqType = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "agent_governance",
        sa.Column("agent_name", sa.String(), nullable=False),
        sa.Column("end_date", sa.Double(), nullable=True),
        sa.Column("orphaned_at", sa.Double(), nullable=True),
        sa.Column("flagged_at", sa.Double(), nullable=True),
        sa.Column("flag_reason", sa.String(), nullable=True),
        sa.Column("last_certified_at", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("agent_name", name="pk_agent_governance"),
    )
    op.create_table(
        "agent_co_owners",
        sa.Column("agent_name", sa.String(), nullable=False),
        sa.Column("human_id", sa.String(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("agent_name", "human_id", name="pk_agent_co_owners"),
    )
    op.create_index("ix_agent_co_owners_human_id", "agent_co_owners", ["human_id"])
    op.create_table(
        "cert_campaigns",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("started_at", sa.Double(), nullable=False),
        sa.Column("started_by", sa.String(), nullable=False),
        sa.Column("period_start", sa.Double(), nullable=False),
        sa.Column("deadline", sa.Double(), nullable=False),
        sa.Column("on_timeout", sa.String(), nullable=False),
        sa.Column("every", sa.Double(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("closed_at", sa.Double(), nullable=True),
        sa.Column("open_slot", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_cert_campaigns"),
        sa.UniqueConstraint("open_slot", name="uq_cert_campaigns_open_slot"),
    )
    op.create_index("ix_cert_campaigns_started_at", "cert_campaigns", ["started_at"])
    op.create_table(
        "cert_reviews",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("campaign_id", sa.String(), nullable=False),
        sa.Column("agent_name", sa.String(), nullable=False),
        sa.Column("owner", sa.String(), nullable=False),
        sa.Column("entitlements", sa.Text(), nullable=False),
        sa.Column("used", sa.Text(), nullable=False),
        sa.Column("deadline", sa.Double(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("decided_at", sa.Double(), nullable=True),
        sa.Column("decided_by", sa.String(), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_cert_reviews"),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["cert_campaigns.id"],
            name="fk_cert_reviews_campaign_id_cert_campaigns",
        ),
        sa.UniqueConstraint(
            "campaign_id", "agent_name", name="uq_cert_reviews_campaign_id_agent_name"
        ),
    )
    op.create_index("ix_cert_reviews_status_deadline", "cert_reviews", ["status", "deadline"])
    op.create_index("ix_cert_reviews_agent_name", "cert_reviews", ["agent_name"])
    op.create_table(
        "audit_checkpoints",
        sa.Column("seq", SeqType, autoincrement=False, nullable=False),
        sa.Column("head_hash", sa.String(64), nullable=False),
        sa.Column("ts", sa.Double(), nullable=False),
        sa.Column("kid", sa.String(), nullable=False),
        sa.Column("jws", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_checkpoints"),
    )
    op.create_table(
        "export_cursors",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("last_seq", SeqType, nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_export_cursors"),
    )
    # ix_tasks_parent_id comes with migration 0004 (delegation subtrees use it too)
    op.create_index("ix_tasks_on_behalf_of", "tasks", ["on_behalf_of"])


def downgrade() -> None:
    op.drop_index("ix_tasks_on_behalf_of", "tasks")
    op.drop_table("export_cursors")
    op.drop_table("audit_checkpoints")
    op.drop_table("cert_reviews")
    op.drop_table("cert_campaigns")
    op.drop_table("agent_co_owners")
    op.drop_table("agent_governance")
