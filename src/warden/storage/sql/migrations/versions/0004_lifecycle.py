"""Credential lifecycle: delegation chains, DPoP replay, leases, sealed keys, replicas.

Revision ID: 0004
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # a plain ADD COLUMN with a default works on SQLite too (no table copy)
    op.add_column("tasks", sa.Column("chain", sa.Text(), nullable=False, server_default="[]"))
    op.create_index("ix_tasks_parent_id", "tasks", ["parent_id"])
    op.create_index("ix_credentials_kid_expires_at", "credentials", ["kid", "expires_at"])

    op.create_table(
        "dpop_proofs",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_dpop_proofs"),
    )
    op.create_index("ix_dpop_proofs_expires_at", "dpop_proofs", ["expires_at"])

    op.create_table(
        "leases",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("task_id", sa.String(), nullable=False),
        sa.Column("agent_name", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("target", sa.String(), nullable=False),
        sa.Column("principal", sa.String(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("kid", sa.String(), nullable=True),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.Column("revoked_at", sa.Double(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_leases"),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], name="fk_leases_task_id_tasks"),
    )
    op.create_index("ix_leases_task_id", "leases", ["task_id"])
    op.create_index("ix_leases_state", "leases", ["state"])
    op.create_index("ix_leases_kid_expires_at", "leases", ["kid", "expires_at"])

    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("algorithm", sa.String(), nullable=False),
        sa.Column("public_jwk", sa.Text(), nullable=False),
        sa.Column("sealed_private", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("superseded_at", sa.Double(), nullable=True),
        sa.Column("retired_at", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("kid", name="pk_signing_keys"),
        sa.UniqueConstraint("generation", name="uq_signing_keys_generation"),
    )

    op.create_table(
        "replicas",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("url", sa.String(), nullable=False),
        sa.Column("started_at", sa.Double(), nullable=False),
        sa.Column("last_seen", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_replicas"),
    )

    op.create_table(
        "change_log",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("ts", sa.Double(), nullable=False),
        sa.Column("origin", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_change_log"),
    )
    op.create_index("ix_change_log_ts", "change_log", ["ts"])


def downgrade() -> None:
    op.drop_table("change_log")
    op.drop_table("replicas")
    op.drop_table("signing_keys")
    op.drop_table("leases")
    op.drop_table("dpop_proofs")
    op.drop_index("ix_credentials_kid_expires_at", table_name="credentials")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_index("ix_tasks_parent_id")
        batch.drop_column("chain")
