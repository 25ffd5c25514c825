"""Shared Signals: SSF streams and the durable outbox of Security Event Tokens (issue 16).

Revision ID: 0013
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SeqType = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ssf_streams",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("audience", sa.String(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("delivery_method", sa.String(), nullable=False),
        sa.Column("endpoint_url", sa.Text(), nullable=True),
        sa.Column("authorization_header", sa.Text(), nullable=True),
        sa.Column("poll_token_hash", sa.String(64), nullable=True),
        sa.Column("events_requested", sa.Text(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.Column("lease_owner", sa.String(), nullable=True),
        sa.Column("lease_until", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_ssf_streams"),
    )
    op.create_table(
        "ssf_outbox",
        sa.Column("id", SeqType, autoincrement=True, nullable=False),
        sa.Column("stream_id", sa.String(), nullable=False),
        sa.Column("jti", sa.String(), nullable=False),
        sa.Column("event_type", sa.String(), nullable=False),
        sa.Column("audit_seq", SeqType, nullable=True),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.Double(), nullable=False),
        sa.Column("delivered_at", sa.Double(), nullable=True),
        sa.Column("outcome", sa.String(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["stream_id"],
            ["ssf_streams.id"],
            name="fk_ssf_outbox_stream_id_ssf_streams",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_ssf_outbox"),
        sa.UniqueConstraint("jti", name="uq_ssf_outbox_jti"),
        sa.UniqueConstraint(
            "stream_id",
            "audit_seq",
            "event_type",
            name="uq_ssf_outbox_stream_id_audit_seq_event_type",
        ),
    )
    op.create_index(
        "ix_ssf_outbox_stream_id_delivered_at_id",
        "ssf_outbox",
        ["stream_id", "delivered_at", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_ssf_outbox_stream_id_delivered_at_id", table_name="ssf_outbox")
    op.drop_table("ssf_outbox")
    op.drop_table("ssf_streams")
