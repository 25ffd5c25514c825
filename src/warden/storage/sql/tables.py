"""Table definitions (SQLAlchemy Core) for the Warden system of record.

This module describes the schema at the newest migration; the migrations under
``warden.storage.sql.migrations`` create it. Keep the two in step: a test compares them.

Conventions:
- times are epoch seconds in double precision (``Double``), so floats round-trip exactly;
- JSON-ish fields are TEXT holding ``json.dumps(value, sort_keys=True, separators=(",", ":"))``
  (never JSONB: the audit hash must round-trip byte for byte);
- enums are stored as their string values.
"""

from __future__ import annotations

import sqlalchemy as sa

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

# An integer primary key we assign ourselves: BIGINT on PostgreSQL, INTEGER (the rowid alias)
# on SQLite.
SeqType = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

humans = sa.Table(
    "humans",
    metadata,
    sa.Column("id", sa.String(), primary_key=True),
    sa.Column("status", sa.String(), nullable=False),
    sa.Column("display_name", sa.Text(), nullable=False),
    sa.Column("created_at", sa.Double(), nullable=False),
)

agents = sa.Table(
    "agents",
    metadata,
    sa.Column("name", sa.String(), primary_key=True),
    sa.Column("spiffe_id", sa.String(), nullable=False),
    sa.Column("owner", sa.String(), nullable=False),
    sa.Column("purpose", sa.Text(), nullable=False),
    sa.Column("risk_tier", sa.String(), nullable=False),
    sa.Column("entitlements", sa.Text(), nullable=False),
    sa.Column("status", sa.String(), nullable=False),
    sa.Column("groups", sa.Text(), nullable=False),
    sa.Column("created_at", sa.Double(), nullable=False),
    sa.Column("updated_at", sa.Double(), nullable=False),
    sa.UniqueConstraint("spiffe_id"),
    sa.Index(None, "owner"),
    sa.Index(None, "status"),
)

tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("id", sa.String(), primary_key=True),
    sa.Column("agent_name", sa.String(), nullable=False),
    sa.Column("spiffe_id", sa.String(), nullable=False),
    sa.Column("purpose", sa.Text(), nullable=False),
    sa.Column("category", sa.String(), nullable=False),
    sa.Column("requested_scope", sa.Text(), nullable=False),
    sa.Column("granted_scope", sa.Text(), nullable=False),
    sa.Column("audience", sa.Text(), nullable=False),
    sa.Column("created_at", sa.Double(), nullable=False),
    sa.Column("expires_at", sa.Double(), nullable=False),
    sa.Column("status", sa.String(), nullable=False),
    sa.Column("parent_id", sa.String(), nullable=True),
    sa.Column("on_behalf_of", sa.String(), nullable=True),
    sa.Column("ended_at", sa.Double(), nullable=True),
    sa.Column("end_reason", sa.Text(), nullable=True),
    sa.Column("attestation", sa.Text(), nullable=False),
    # the delegation chain (JSON list of SPIFFE IDs, root agent first); migration 0004
    sa.Column("chain", sa.Text(), nullable=False, server_default="[]"),
    # list_tasks pages newest first on (created_at, id), optionally filtered by agent or status
    sa.Index(None, "agent_name", "created_at", "id"),
    sa.Index(None, "status", "created_at", "id"),
    sa.Index(None, "created_at", "id"),
    # ending a task ends its delegated subtree
    sa.Index(None, "parent_id"),
)

credentials = sa.Table(
    "credentials",
    metadata,
    sa.Column("jti", sa.String(), primary_key=True),
    sa.Column("task_id", sa.String(), sa.ForeignKey("tasks.id"), nullable=False),
    sa.Column("agent_name", sa.String(), nullable=False),
    sa.Column("issued_at", sa.Double(), nullable=False),
    sa.Column("expires_at", sa.Double(), nullable=False),
    sa.Column("kid", sa.String(), nullable=False),
    sa.Column("revoked_at", sa.Double(), nullable=True),
    sa.Index(None, "task_id"),
    # the revocation set: revoked credentials that have not expired yet
    sa.Index(None, "revoked_at", "expires_at"),
    # key retirement: the last expiry of what each key signed
    sa.Index(None, "kid", "expires_at"),
)

operators = sa.Table(
    "operators",
    metadata,
    sa.Column("id", sa.String(), primary_key=True),
    sa.Column("name", sa.String(), nullable=False),
    sa.Column("role", sa.String(), nullable=False),
    sa.Column("token_hash", sa.String(), nullable=False),
    sa.Column("created_at", sa.Double(), nullable=False),
    sa.Column("disabled", sa.Boolean(), nullable=False),
    sa.Column("human", sa.String(), nullable=True),
    sa.Column("expires_at", sa.Double(), nullable=True),
    sa.UniqueConstraint("token_hash"),
)

enforcement_modes = sa.Table(
    "enforcement_modes",
    metadata,
    sa.Column("kind", sa.String(), primary_key=True),
    sa.Column("value", sa.String(), primary_key=True),
    sa.Column("mode", sa.String(), nullable=False),
    sa.Column("updated_at", sa.Double(), nullable=False),
    sa.Column("updated_by", sa.String(), nullable=False),
)

audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("seq", SeqType, primary_key=True, autoincrement=False),
    sa.Column("ts", sa.Double(), nullable=False),
    sa.Column("type", sa.String(), nullable=False),
    sa.Column("actor", sa.String(), nullable=False),
    sa.Column("agent", sa.String(), nullable=True),
    sa.Column("task_id", sa.String(), nullable=True),
    sa.Column("decision_id", sa.String(), nullable=True),
    sa.Column("data", sa.Text(), nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Index(None, "type"),
    sa.Index(None, "agent"),
    sa.Index(None, "task_id"),
    sa.Index(None, "ts"),
    sa.Index(None, "decision_id"),
)

approvals = sa.Table(
    "approvals",
    metadata,
    sa.Column("id", sa.String(), primary_key=True),
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
    sa.Index(None, "status", "created_at"),
    sa.Index(None, "agent", "created_at"),
    sa.Index(None, "digest"),
    sa.Index(None, "updated_at"),
)

findings = sa.Table(
    "findings",
    metadata,
    sa.Column("id", sa.String(), primary_key=True),
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
    sa.Index(None, "agent", "created_at"),
    sa.Index(None, "created_at", "id"),
)

agent_baselines = sa.Table(
    "agent_baselines",
    metadata,
    sa.Column("agent", sa.String(), primary_key=True),
    sa.Column("declared", sa.Text(), nullable=False),
    sa.Column("learned", sa.Text(), nullable=False),
    sa.Column("updated_at", sa.Double(), nullable=False),
)

registration_entries = sa.Table(
    "registration_entries",
    metadata,
    sa.Column("id", sa.String(), primary_key=True),
    sa.Column("agent_name", sa.String(), sa.ForeignKey("agents.name"), nullable=False),
    sa.Column("selectors", sa.Text(), nullable=False),
    # sha256 of the canonical selector list: one selector set belongs to at most one entry
    sa.Column("selectors_key", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Double(), nullable=False),
    sa.Column("created_by", sa.String(), nullable=False),
    sa.Column("description", sa.Text(), nullable=False),
    sa.UniqueConstraint("selectors_key"),
    sa.Index(None, "agent_name"),
)

join_tokens = sa.Table(
    "join_tokens",
    metadata,
    sa.Column("id", sa.String(), primary_key=True),
    sa.Column("agent_name", sa.String(), sa.ForeignKey("agents.name"), nullable=False),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Double(), nullable=False),
    sa.Column("expires_at", sa.Double(), nullable=False),
    sa.Column("created_by", sa.String(), nullable=False),
    sa.Column("used_at", sa.Double(), nullable=True),
    sa.Index(None, "agent_name"),
)

# --- credential lifecycle (migration 0004) ----------------------------------------------------

# DPoP proofs seen by any replica (RFC 9449 §11.1), kept until they are too old to pass anyway.
dpop_proofs = sa.Table(
    "dpop_proofs",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("expires_at", sa.Double(), nullable=False),
    sa.Index(None, "expires_at"),
)

leases = sa.Table(
    "leases",
    metadata,
    sa.Column("id", sa.String(), primary_key=True),
    sa.Column("task_id", sa.String(), sa.ForeignKey("tasks.id"), nullable=False),
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
    sa.Index(None, "task_id"),
    sa.Index(None, "state"),
    sa.Index(None, "kid", "expires_at"),
)

signing_keys = sa.Table(
    "signing_keys",
    metadata,
    sa.Column("kid", sa.String(), primary_key=True),
    sa.Column("generation", sa.Integer(), nullable=False),
    sa.Column("algorithm", sa.String(), nullable=False),
    sa.Column("public_jwk", sa.Text(), nullable=False),
    sa.Column("sealed_private", sa.Text(), nullable=True),
    sa.Column("created_at", sa.Double(), nullable=False),
    sa.Column("superseded_at", sa.Double(), nullable=True),
    sa.Column("retired_at", sa.Double(), nullable=True),
    sa.UniqueConstraint("generation"),
)

replicas = sa.Table(
    "replicas",
    metadata,
    sa.Column("id", sa.String(), primary_key=True),
    sa.Column("url", sa.String(), nullable=False),
    sa.Column("started_at", sa.Double(), nullable=False),
    sa.Column("last_seen", sa.Double(), nullable=False),
)

# Changes announced between replicas where there is no LISTEN/NOTIFY (SQLite): polled by seq.
change_log = sa.Table(
    "change_log",
    metadata,
    sa.Column("seq", SeqType, primary_key=True, autoincrement=True),
    sa.Column("ts", sa.Double(), nullable=False),
    sa.Column("origin", sa.String(), nullable=False),
    sa.Column("kind", sa.String(), nullable=False),
    sa.Column("data", sa.Text(), nullable=False),
    sa.Index(None, "ts"),
)

# -- governance (issue 7) ----------------------------------------------------------------------

agent_governance = sa.Table(
    "agent_governance",
    metadata,
    sa.Column("agent_name", sa.String(), primary_key=True),
    sa.Column("end_date", sa.Double(), nullable=True),
    sa.Column("orphaned_at", sa.Double(), nullable=True),
    sa.Column("flagged_at", sa.Double(), nullable=True),
    sa.Column("flag_reason", sa.String(), nullable=True),
    sa.Column("last_certified_at", sa.Double(), nullable=True),
)

agent_co_owners = sa.Table(
    "agent_co_owners",
    metadata,
    sa.Column("agent_name", sa.String(), primary_key=True),
    sa.Column("human_id", sa.String(), primary_key=True),
    sa.Column("position", sa.Integer(), nullable=False),
    sa.Index(None, "human_id"),
)

cert_campaigns = sa.Table(
    "cert_campaigns",
    metadata,
    sa.Column("id", sa.String(), primary_key=True),
    sa.Column("started_at", sa.Double(), nullable=False),
    sa.Column("started_by", sa.String(), nullable=False),
    sa.Column("period_start", sa.Double(), nullable=False),
    sa.Column("deadline", sa.Double(), nullable=False),
    sa.Column("on_timeout", sa.String(), nullable=False),
    sa.Column("every", sa.Double(), nullable=True),
    sa.Column("status", sa.String(), nullable=False),
    sa.Column("closed_at", sa.Double(), nullable=True),
    # 1 while open, NULL once closed: the unique constraint allows one open campaign at a time,
    # across replicas, without a lock (NULLs never collide)
    sa.Column("open_slot", sa.Integer(), nullable=True),
    sa.UniqueConstraint("open_slot"),
    sa.Index(None, "started_at"),
)

cert_reviews = sa.Table(
    "cert_reviews",
    metadata,
    sa.Column("id", sa.String(), primary_key=True),
    sa.Column("campaign_id", sa.String(), sa.ForeignKey("cert_campaigns.id"), nullable=False),
    sa.Column("agent_name", sa.String(), nullable=False),
    sa.Column("owner", sa.String(), nullable=False),
    sa.Column("entitlements", sa.Text(), nullable=False),
    sa.Column("used", sa.Text(), nullable=False),
    sa.Column("deadline", sa.Double(), nullable=False),
    sa.Column("status", sa.String(), nullable=False),
    sa.Column("decided_at", sa.Double(), nullable=True),
    sa.Column("decided_by", sa.String(), nullable=True),
    sa.Column("result", sa.Text(), nullable=True),
    sa.UniqueConstraint("campaign_id", "agent_name"),
    sa.Index(None, "status", "deadline"),
    sa.Index(None, "agent_name"),
)

audit_checkpoints = sa.Table(
    "audit_checkpoints",
    metadata,
    sa.Column("seq", SeqType, primary_key=True, autoincrement=False),
    sa.Column("head_hash", sa.String(64), nullable=False),
    sa.Column("ts", sa.Double(), nullable=False),
    sa.Column("kid", sa.String(), nullable=False),
    sa.Column("jws", sa.Text(), nullable=False),
)

export_cursors = sa.Table(
    "export_cursors",
    metadata,
    sa.Column("name", sa.String(), primary_key=True),
    sa.Column("last_seq", SeqType, nullable=False),
    sa.Column("updated_at", sa.Double(), nullable=False),
)

# Shared Signals (issue 16): streams registered by operators, and the outbox of signed SETs.
# The outbox is filled from the audit log (cursor ``ssf`` in export_cursors) and drained in id
# order per stream, so events are durable, retried and ordered.
ssf_streams = sa.Table(
    "ssf_streams",
    metadata,
    sa.Column("id", sa.String(), primary_key=True),
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
)

ssf_outbox = sa.Table(
    "ssf_outbox",
    metadata,
    sa.Column("id", SeqType, primary_key=True, autoincrement=True),
    sa.Column(
        "stream_id",
        sa.String(),
        sa.ForeignKey("ssf_streams.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("jti", sa.String(), nullable=False, unique=True),
    sa.Column("event_type", sa.String(), nullable=False),
    sa.Column("audit_seq", SeqType, nullable=True),
    sa.Column("token", sa.Text(), nullable=False),
    sa.Column("created_at", sa.Double(), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("next_attempt_at", sa.Double(), nullable=False),
    sa.Column("delivered_at", sa.Double(), nullable=True),
    sa.Column("outcome", sa.String(), nullable=True),  # delivered | rejected (by the receiver)
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.UniqueConstraint("stream_id", "audit_seq", "event_type"),
    sa.Index(None, "stream_id", "delivered_at", "id"),
)

# attribution queries find a human's tasks (delegation subtrees use ix_tasks_parent_id above)
sa.Index("ix_tasks_on_behalf_of", tasks.c.on_behalf_of)

# --- integrity (issue 14): agent manifest declarations and MCP tool pins ----------------------

agent_manifests = sa.Table(
    "agent_manifests",
    metadata,
    sa.Column("agent_name", sa.String(), primary_key=True),
    sa.Column("declaration", sa.Text(), nullable=False),
    sa.Column("updated_at", sa.Double(), nullable=False),
    sa.Column("updated_by", sa.String(), nullable=False),
)

mcp_tool_pins = sa.Table(
    "mcp_tool_pins",
    metadata,
    sa.Column("server", sa.String(), primary_key=True),
    sa.Column("tool", sa.String(), primary_key=True),
    sa.Column("digest", sa.String(), nullable=False),
    sa.Column("definition", sa.Text(), nullable=False),
    sa.Column("approved_by", sa.String(), nullable=False),
    sa.Column("approved_at", sa.Double(), nullable=False),
    # the latest definition seen that differs from the approved one (until re-approved)
    sa.Column("observed_digest", sa.String(), nullable=True),
    sa.Column("observed_definition", sa.Text(), nullable=True),
    sa.Column("observed_at", sa.Double(), nullable=True),
)

# Distributed policy sets (ADR 0120): every revision ever published, and the one every replica
# must serve. ``files`` is ``{file name: text}`` as canonical JSON.
policy_bundles = sa.Table(
    "policy_bundles",
    metadata,
    sa.Column("revision", sa.String(64), primary_key=True),
    sa.Column("files", sa.Text(), nullable=False),
    sa.Column("created_at", sa.Double(), nullable=False),
    sa.Column("created_by", sa.String(), nullable=False),
)

policy_active = sa.Table(
    "policy_active",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),  # always 1
    sa.Column("revision", sa.String(64), nullable=False),
    sa.Column("activated_at", sa.Double(), nullable=False),
    sa.Column("activated_by", sa.String(), nullable=False),
)
