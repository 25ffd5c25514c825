"""Protocols the core and services need from the outside world.

``Store`` is the system of record. Implementations: ``warden.storage.sql.SQLStore`` (SQLite and
PostgreSQL). Every method is one transaction; methods that change several rows do so atomically.
Errors: ``NotFoundError`` (fetch_* on a missing row), ``ConflictError`` (unique violations),
``StorageError`` (anything else from the database, with the driver error as ``__cause__``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from warden.core.governance import (
    AgentGovernance,
    AuditQuery,
    Campaign,
    Checkpoint,
    Review,
    ReviewStatus,
)
from warden.core.model import (
    Agent,
    AgentStatus,
    ApprovalRequest,
    ApprovalStatus,
    AuditDraft,
    AuditRecord,
    Baseline,
    Change,
    Credential,
    DenyChanges,
    Finding,
    Human,
    HumanStatus,
    JoinToken,
    Lease,
    LeaseState,
    ModeSetting,
    Operator,
    PolicyPointer,
    RegistrationEntry,
    Replica,
    StoredKey,
    Task,
    TaskStatus,
)
from warden.core.pins import ToolPin


class GovernanceStore(Protocol):
    """Persistence for governance and evidence (issue 7). ``SQLStore`` implements both."""

    # -- owners and lifecycle ------------------------------------------------------------------
    def list_humans(
        self, *, status: HumanStatus | None = None, after: str | None = None, limit: int = 100
    ) -> list[Human]:
        """Ordered by id; ``after`` is the last id of the previous page."""
        ...

    def fetch_governance(self, agent_name: str) -> AgentGovernance:
        """The agent's governance state; an empty one when nothing was stored yet."""
        ...

    def put_governance(self, governance: AgentGovernance) -> None:
        """Insert or replace the agent's governance state and its co-owner list."""
        ...

    def agents_owned_by(self, human_id: str) -> list[str]:
        """Names of agents whose primary owner or co-owner is ``human_id``."""
        ...

    def last_activity(self) -> dict[str, float]:
        """Per agent name, the start time of its newest task (agents never used are absent)."""
        ...

    # -- certification ---------------------------------------------------------------------
    def create_campaign(self, campaign: Campaign, reviews: Sequence[Review]) -> None:
        """Insert an open campaign with its reviews; ConflictError if one is already open."""
        ...

    def fetch_campaign(self, campaign_id: str) -> Campaign: ...

    def list_campaigns(self, *, limit: int = 100) -> list[Campaign]:
        """Newest first."""
        ...

    def close_campaign(self, campaign_id: str, *, closed_at: float) -> Campaign:
        """Mark an open campaign closed; ConflictError if it is not open."""
        ...

    def fetch_review(self, review_id: str) -> Review: ...

    def list_reviews(
        self,
        *,
        campaign_id: str | None = None,
        status: ReviewStatus | None = None,
        agent: str | None = None,
        due_before: float | None = None,
    ) -> list[Review]:
        """Ordered by deadline, then agent name."""
        ...

    def decide_review(self, review: Review) -> None:
        """Store a decided review; ConflictError unless the stored one is still pending."""
        ...

    # -- audit checkpoints and export ---------------------------------------------------------
    def create_checkpoint(self, checkpoint: Checkpoint) -> None:
        """ConflictError if a checkpoint at that seq exists."""
        ...

    def list_checkpoints(self, *, after_seq: int = 0, limit: int = 1000) -> list[Checkpoint]:
        """Ascending by seq."""
        ...

    def latest_checkpoint(self) -> Checkpoint | None: ...

    def iter_checkpoints(self, *, batch: int = 1000) -> Iterator[Checkpoint]:
        """Every checkpoint in seq order, fetched in batches."""
        ...

    def fetch_export_cursor(self, name: str) -> int:
        """The last exported seq for the named sink (0 when it never exported)."""
        ...

    def advance_export_cursor(self, name: str, *, expected: int, to: int, at: float) -> None:
        """Move the cursor from ``expected`` to ``to`` (ConflictError if it is elsewhere)."""
        ...

    # -- attribution ---------------------------------------------------------------------------
    def search_audit(
        self, query: AuditQuery, *, after_seq: int = 0, limit: int = 100
    ) -> list[AuditRecord]:
        """Records matching every filter of ``query``, ascending by seq after ``after_seq``."""
        ...

    def task_subtree(self, task_id: str) -> list[Task]:
        """The task and its delegated subtasks, recursively, oldest first (NotFoundError)."""
        ...


class IntegrityStore(Protocol):
    """Agent manifest declarations and MCP tool pins (issue 14)."""

    def put_manifest_declaration(
        self, agent_name: str, declaration: dict[str, Any], *, at: float, by: str
    ) -> None: ...

    def fetch_manifest_declaration(self, agent_name: str) -> dict[str, Any]:
        """NotFoundError when the agent declares none."""
        ...

    def delete_manifest_declaration(self, agent_name: str) -> None: ...

    def list_tool_pins(self, *, server: str | None = None) -> list[ToolPin]: ...

    def fetch_tool_pin(self, server: str, tool: str) -> ToolPin: ...

    def put_tool_pin(self, pin: ToolPin) -> None:
        """Approve a definition: replaces the pin and clears what was observed."""
        ...

    def create_tool_pin(self, pin: ToolPin) -> bool:
        """Insert unless a pin exists (trust on first use): True when this call pinned."""
        ...

    def note_tool_change(
        self, server: str, tool: str, digest: str, definition: dict[str, Any], *, at: float
    ) -> bool:
        """Record a differing definition: True the first time this digest is seen."""
        ...

    def delete_tool_pin(self, server: str, tool: str) -> None: ...


class Store(GovernanceStore, IntegrityStore, Protocol):
    # -- lifecycle -------------------------------------------------------------------------
    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (idempotent)."""
        ...

    def close(self) -> None: ...

    # -- humans (owners) -------------------------------------------------------------------
    def upsert_human(self, human: Human) -> Human:
        """Insert the human if unknown; return the stored row (existing rows are unchanged)."""
        ...

    def fetch_human(self, human_id: str) -> Human: ...

    def update_human(self, human: Human) -> None: ...

    # -- agents ----------------------------------------------------------------------------
    def create_agent(self, agent: Agent) -> None:
        """ConflictError if the name or the SPIFFE ID is taken (by any agent, in any status)."""
        ...

    def fetch_agent(self, name: str) -> Agent: ...

    def fetch_agent_by_spiffe_id(self, spiffe_id: str) -> Agent: ...

    def list_agents(
        self,
        *,
        status: AgentStatus | None = None,
        owner: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[Agent]:
        """Ordered by name; ``after`` is the last name of the previous page."""
        ...

    def update_agent(self, agent: Agent) -> None:
        """Replace the agent row by name (NotFoundError if absent)."""
        ...

    # -- tasks and credentials ---------------------------------------------------------------
    def create_task(
        self, task: Task, credential: Credential, audit: Sequence[AuditDraft] = ()
    ) -> list[AuditRecord]:
        """Insert a task, its first credential and the audit records of their issuance in one
        transaction (appended to the chain there); returns those records."""
        ...

    def create_credential(
        self, credential: Credential, audit: Sequence[AuditDraft] = ()
    ) -> list[AuditRecord]: ...

    def fetch_task(self, task_id: str) -> Task: ...

    def list_tasks(
        self,
        *,
        agent: str | None = None,
        status: TaskStatus | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[Task]:
        """Newest first (created_at, id descending); ``after``: last id of the previous page."""
        ...

    def list_active_tasks(self) -> Iterator[Task]:
        """Every task with status active (streamed)."""
        ...

    def end_task(
        self, task_id: str, status: TaskStatus, *, ended_at: float, reason: str
    ) -> tuple[Task, list[Credential]]:
        """Set a task's final status and revoke all its unrevoked credentials, atomically.

        Only an active task can end: ConflictError otherwise. Returns the updated task and the
        credentials revoked by this call.
        """
        ...

    def end_task_tree(
        self, task_id: str, status: TaskStatus, *, ended_at: float, reason: str
    ) -> list[tuple[Task, list[Credential]]]:
        """End a task and every active task delegated from it (transitively), atomically.

        The task gets ``status``; its active descendants get ``revoked`` with the reason
        ``parent task <id> <status>``. Every unrevoked credential of each is revoked. Returns
        (task, credentials revoked by this call) pairs, the requested task first, then its
        descendants parent before child. NotFoundError / ConflictError as ``end_task``.
        """
        ...

    def list_child_tasks(self, parent_id: str) -> list[Task]:
        """Tasks delegated directly from ``parent_id`` (any status), oldest first."""
        ...

    def fetch_credential(self, jti: str) -> Credential: ...

    def revoke_credential(self, jti: str, *, revoked_at: float) -> Credential:
        """Mark one credential revoked (idempotent: an earlier revocation time is kept)."""
        ...

    def list_credentials(self, task_id: str) -> list[Credential]: ...

    def list_revoked_credentials(self, *, not_expired_at: float) -> list[Credential]:
        """Revoked credentials whose expiry is still in the future (for the revocation set)."""
        ...

    # -- registration entries and join tokens ------------------------------------------------
    def create_entry(self, entry: RegistrationEntry) -> None:
        """NotFoundError for an unknown agent; ConflictError when an entry (of any agent) already
        has exactly these selectors."""
        ...

    def fetch_entry(self, entry_id: str) -> RegistrationEntry: ...

    def list_entries(self, *, agent: str | None = None) -> list[RegistrationEntry]:
        """Every entry (or one agent's), ordered by agent name then id."""
        ...

    def delete_entry(self, entry_id: str) -> None: ...

    def create_join_token(self, token: JoinToken) -> None:
        """NotFoundError for an unknown agent."""
        ...

    def fetch_join_token(self, token_id: str) -> JoinToken: ...

    def consume_join_token(self, token_id: str, *, now: float) -> JoinToken:
        """Mark an unused, unexpired token used in one statement and return it.

        NotFoundError when unknown; ConflictError when already used or expired (so of two
        concurrent callers exactly one wins).
        """
        ...

    # -- DPoP proof replay (shared by every replica) ------------------------------------------
    def remember_proof(self, key: str, *, expires_at: float, now: float) -> bool:
        """Record a proof key (a hash of key thumbprint and ``jti``) until ``expires_at``.

        True the first time; False when the key is already recorded and not yet expired (a
        replay). Atomic across processes: of two concurrent calls with one key, one wins.
        """
        ...

    def prune_proofs(self, *, now: float) -> int:
        """Forget expired proof keys; returns how many were removed."""
        ...

    # -- leases ----------------------------------------------------------------------------------
    def create_lease(self, lease: Lease) -> None:
        """Record a lease (before anything is created downstream). ConflictError on a dup id."""
        ...

    def fetch_lease(self, lease_id: str) -> Lease: ...

    def update_lease(self, lease: Lease) -> None:
        """Replace the lease row by id (NotFoundError if absent)."""
        ...

    def list_leases(
        self,
        *,
        task_id: str | None = None,
        states: Sequence[LeaseState] | None = None,
        target: str | None = None,
    ) -> list[Lease]:
        """Leases matching every given filter, oldest first."""
        ...

    def list_leases_of_ended_tasks(self) -> list[Lease]:
        """Leases in creating/active/revoking whose task is no longer active (for the reaper)."""
        ...

    # -- signing keys (private halves sealed by the key manager) ----------------------------
    def create_signing_key(self, key: StoredKey) -> None: ...

    def list_signing_keys(self) -> list[StoredKey]:
        """Every key, oldest generation first."""
        ...

    def update_signing_key(self, key: StoredKey) -> None: ...

    def last_expiry_signed_by(self, kid: str) -> float | None:
        """The latest expiry of anything recorded as signed by ``kid`` (credentials, leases)."""
        ...

    # -- replicas and the change log -----------------------------------------------------------
    def upsert_replica(self, replica: Replica) -> None: ...

    def list_replicas(self, *, seen_since: float) -> list[Replica]: ...

    def delete_replica(self, replica_id: str) -> None: ...

    def append_change(self, change: Change, *, ts: float) -> int:
        """Append to the change log (databases without LISTEN/NOTIFY); returns its seq."""
        ...

    def list_changes(self, *, after_seq: int, limit: int = 500) -> list[tuple[int, Change]]: ...

    def last_change_seq(self) -> int: ...

    def prune_changes(self, *, before: float) -> int: ...

    def deny_changes(self, *, since: float, now: float) -> DenyChanges:
        """Credentials revoked and agents made inactive after ``since`` (credentials still
        unexpired at ``now``): one cheap indexed read, the freshness poll (ADR 0092)."""
        ...

    # -- operators ---------------------------------------------------------------------------
    def create_operator(self, operator: Operator) -> None: ...

    def fetch_operator_by_token_hash(self, token_hash: str) -> Operator: ...

    def update_operator(self, operator: Operator) -> None: ...

    def list_operators(self) -> list[Operator]: ...

    # -- approvals ---------------------------------------------------------------------------
    def create_approval(self, request: ApprovalRequest) -> None:
        """ConflictError if the id exists."""
        ...

    def fetch_approval(self, request_id: str) -> ApprovalRequest: ...

    def update_approval(
        self, request: ApprovalRequest, *, expect_status: ApprovalStatus
    ) -> ApprovalRequest:
        """Replace the row if its stored status is still ``expect_status`` (compare and set).

        ApprovalClosedError when another process changed the status first.
        """
        ...

    def use_approval(self, request_id: str, *, used_at: float, decision_id: str) -> bool:
        """Spend an approved, unexpired, unused grant atomically; False if it cannot be spent."""
        ...

    def list_approvals(
        self,
        *,
        status: ApprovalStatus | None = None,
        agent: str | None = None,
        updated_since: float | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[ApprovalRequest]:
        """Newest first (created_at, id descending); ``after``: last id of the previous page.

        With ``updated_since``: oldest change first (updated_at ascending), for replica sync.
        """
        ...

    # -- behaviour ---------------------------------------------------------------------------
    def create_findings(self, findings: Sequence[Finding]) -> None: ...

    def list_findings(
        self,
        *,
        agent: str | None = None,
        severity: str | None = None,
        since: float | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[Finding]:
        """Newest first (created_at, id descending); ``after``: last id of the previous page."""
        ...

    def put_baseline(self, baseline: Baseline) -> None:
        """Upsert by agent."""
        ...

    def list_baselines(self) -> list[Baseline]: ...

    # -- enforcement modes ---------------------------------------------------------------
    def set_mode(self, setting: ModeSetting) -> None:
        """Upsert by (kind, value)."""
        ...

    def delete_mode(self, kind: str, value: str) -> None: ...

    def list_modes(self) -> list[ModeSetting]: ...

    # -- distributed policies (ADR 0120) ------------------------------------------------
    def publish_policies(
        self, revision: str, files: dict[str, str], *, at: float, by: str
    ) -> PolicyPointer:
        """Store the bundle (once per revision) and make it active, atomically."""
        ...

    def active_policies(self) -> PolicyPointer | None: ...

    def policy_bundle(self, revision: str) -> dict[str, str]:
        """The files of a published revision; NotFoundError if unknown."""
        ...

    # -- audit -------------------------------------------------------------------------------
    def append_audit(self, drafts: Sequence[AuditDraft]) -> list[AuditRecord]:
        """Append drafts to the hash chain in one transaction.

        Reads the chain head under a lock that serialises appenders across processes
        (PostgreSQL advisory transaction lock; SQLite's write lock via BEGIN IMMEDIATE), then
        seals each draft with ``warden.core.audit.seal`` using consecutive seq numbers from
        head.seq + 1 (the first record is seq 1 with prev ``GENESIS_HASH``).
        """
        ...

    def list_audit(
        self,
        *,
        after_seq: int = 0,
        limit: int = 100,
        type_prefix: str | None = None,
        agent: str | None = None,
        task_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[AuditRecord]:
        """Ascending by seq, strictly after ``after_seq``."""
        ...

    def iter_audit(self, *, batch: int = 1000) -> Iterator[AuditRecord]:
        """Every record in seq order, fetched in batches (for verification and export)."""
        ...

    def audit_head(self) -> tuple[int, str]:
        """(seq, hash) of the newest record, or (0, GENESIS_HASH) when empty."""
        ...
