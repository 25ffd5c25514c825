"""``SQLStore``: the ``warden.core.ports.Store`` over SQLAlchemy 2 Core (SQLite and PostgreSQL).

Every public method runs in one transaction on a pooled connection, so a store is safe to share
between threads. Driver errors are translated: ``IntegrityError`` to ``ConflictError``, any other
``SQLAlchemyError`` to ``StorageError`` (the driver error chained as ``__cause__``).

SQLite: every connection gets ``busy_timeout``, ``journal_mode=WAL`` and ``foreign_keys=ON``;
pysqlite's own transaction handling is switched off and the store emits ``BEGIN`` itself
(``BEGIN IMMEDIATE`` for writes, so writers queue on the database lock instead of failing
when a read transaction tries to upgrade). PostgreSQL: ``postgresql://`` URLs use psycopg 3;
audit appenders serialise on a transaction-level advisory lock.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from types import TracebackType
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import URL, Connection, Engine, RowMapping, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    IntegrityError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.pool import StaticPool

from warden.core.audit import GENESIS_HASH, prepare_draft, seal
from warden.core.model import (
    Agent,
    AgentStatus,
    ApprovalRequest,
    ApprovalStatus,
    AuditDraft,
    AuditRecord,
    Baseline,
    Credential,
    EnforcementMode,
    Finding,
    Human,
    HumanStatus,
    JoinToken,
    ModeSetting,
    Operator,
    OperatorRole,
    RegistrationEntry,
    RiskTier,
    Severity,
    Task,
    TaskStatus,
)
from warden.errors import (
    ApprovalClosedError,
    ConflictError,
    DatabaseUnavailableError,
    InvalidParameterError,
    NotFoundError,
    StorageError,
    WardenError,
)
from warden.storage.sql.codec import dump as _dump
from warden.storage.sql.codec import load_tuple as _load_tuple
from warden.storage.sql.governance import GovernanceSQL
from warden.storage.sql.integrity import IntegrityStoreMixin
from warden.storage.sql.lifecycle import LifecycleStoreMixin
from warden.storage.sql.policies import PolicyStoreMixin
from warden.storage.sql.rows import fetch_one
from warden.storage.sql.signals import SignalsSQL
from warden.storage.sql.tables import (
    agent_baselines,
    agents,
    approvals,
    audit_events,
    credentials,
    enforcement_modes,
    findings,
    humans,
    join_tokens,
    operators,
    registration_entries,
    tasks,
)

__all__ = ["SQLStore", "normalize_url", "open_store"]

# pg_advisory_xact_lock keys (bigint). Constant across processes and releases.
AUDIT_LOCK_KEY: Final = 0x5741_5244_454E_0001  # "WARDEN" + 1: audit chain appenders
MIGRATE_LOCK_KEY: Final = 0x5741_5244_454E_0002  # "WARDEN" + 2: schema migrations

SQLITE_BUSY_TIMEOUT_MS: Final = 5000

# Connection execution option read by the SQLite "begin" hook: start with BEGIN IMMEDIATE.
_WRITE_OPTION: Final = "warden_write"
_ACTIVE: Final = TaskStatus.ACTIVE.value


# --- engine construction ------------------------------------------------------------------


def normalize_url(url: str | URL) -> URL:
    """Parse a database URL; plain ``postgresql://`` (or ``postgres://``) uses psycopg 3."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except ArgumentError as exc:
        raise InvalidParameterError(f"invalid database url: {exc}") from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise InvalidParameterError(
            f"unsupported database `{backend}`: use a sqlite:// or postgresql:// url"
        )
    return parsed


def _is_sqlite_memory(url: URL) -> bool:
    database = url.database or ""
    return database in ("", ":memory:") or (
        database.startswith("file:") and "mode=memory" in database
    )


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control away from pysqlite; the "begin" hook emits BEGIN.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        _enable_wal(cursor)
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _enable_wal(cursor: Any) -> None:
    """WAL is a property of the database file: set it once, and wait out other writers.

    Switching the journal mode needs the database to itself and SQLite does not apply the busy
    timeout to it, so on a fresh file two processes starting together would see `database is
    locked`; retry for as long as the busy timeout would have waited.
    """
    import sqlite3
    import time

    if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
        return
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


def _sqlite_on_begin(conn: Connection) -> None:
    immediate = bool(conn.get_execution_options().get(_WRITE_OPTION))
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _create_engine(url: URL, *, echo: bool = False) -> tuple[Engine, bool]:
    """Build the engine; the flag is True when the database is one in-memory SQLite DB."""
    if url.get_backend_name() == "sqlite":
        memory = _is_sqlite_memory(url)
        options: dict[str, Any] = {
            "connect_args": {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            "echo": echo,
        }
        if memory:
            # One shared connection, otherwise every pooled connection is a new empty DB.
            options["poolclass"] = StaticPool
        else:
            options.update(pool_size=10, max_overflow=30, pool_timeout=30)
        engine = sa.create_engine(url, **options)
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine, memory
    engine = sa.create_engine(
        url,
        echo=echo,
        # a partition that drops packets must fail a query within seconds (the replica is then
        # stale, ADR 0092), not after the kernel's 15-minute retransmission timeout
        connect_args={"connect_timeout": 5, "tcp_user_timeout": 10000, "keepalives": 1},
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=20,
        pool_timeout=30,
        pool_recycle=1800,
    )
    return engine, False


def _describe(exc: SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return first[:1].lower() + first[1:]


# --- value encoding -----------------------------------------------------------------------


def _human_row(h: Human) -> dict[str, Any]:
    return {
        "id": h.id,
        "status": h.status.value,
        "display_name": h.display_name,
        "created_at": float(h.created_at),
    }


def _human(m: RowMapping) -> Human:
    return Human(
        id=m["id"],
        status=HumanStatus(m["status"]),
        display_name=m["display_name"],
        created_at=m["created_at"],
    )


def _agent_row(a: Agent) -> dict[str, Any]:
    return {
        "name": a.name,
        "spiffe_id": a.spiffe_id,
        "owner": a.owner,
        "purpose": a.purpose,
        "risk_tier": a.risk_tier.value,
        "entitlements": _dump(list(a.entitlements)),
        "status": a.status.value,
        "groups": _dump(list(a.groups)),
        "created_at": float(a.created_at),
        "updated_at": float(a.updated_at),
    }


def _agent(m: RowMapping) -> Agent:
    return Agent(
        name=m["name"],
        spiffe_id=m["spiffe_id"],
        owner=m["owner"],
        purpose=m["purpose"],
        risk_tier=RiskTier(m["risk_tier"]),
        entitlements=_load_tuple(m["entitlements"]),
        status=AgentStatus(m["status"]),
        groups=_load_tuple(m["groups"]),
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )


def _task_row(t: Task) -> dict[str, Any]:
    return {
        "id": t.id,
        "agent_name": t.agent_name,
        "spiffe_id": t.spiffe_id,
        "purpose": t.purpose,
        "category": t.category,
        "requested_scope": _dump(list(t.requested_scope)),
        "granted_scope": _dump(list(t.granted_scope)),
        "audience": _dump(list(t.audience)),
        "created_at": float(t.created_at),
        "expires_at": float(t.expires_at),
        "status": t.status.value,
        "parent_id": t.parent_id,
        "on_behalf_of": t.on_behalf_of,
        "ended_at": None if t.ended_at is None else float(t.ended_at),
        "end_reason": t.end_reason,
        "attestation": _dump(t.attestation),
        "chain": _dump(list(t.chain)),
    }


def _task(m: RowMapping) -> Task:
    return Task(
        id=m["id"],
        agent_name=m["agent_name"],
        spiffe_id=m["spiffe_id"],
        purpose=m["purpose"],
        category=m["category"],
        requested_scope=_load_tuple(m["requested_scope"]),
        granted_scope=_load_tuple(m["granted_scope"]),
        audience=_load_tuple(m["audience"]),
        created_at=m["created_at"],
        expires_at=m["expires_at"],
        status=TaskStatus(m["status"]),
        parent_id=m["parent_id"],
        on_behalf_of=m["on_behalf_of"],
        ended_at=m["ended_at"],
        end_reason=m["end_reason"],
        attestation=json.loads(m["attestation"]),
        chain=_load_tuple(m["chain"]),
    )


def _credential_row(c: Credential) -> dict[str, Any]:
    return {
        "jti": c.jti,
        "task_id": c.task_id,
        "agent_name": c.agent_name,
        "issued_at": float(c.issued_at),
        "expires_at": float(c.expires_at),
        "kid": c.kid,
        "revoked_at": None if c.revoked_at is None else float(c.revoked_at),
    }


def _credential(m: RowMapping) -> Credential:
    return Credential(
        jti=m["jti"],
        task_id=m["task_id"],
        agent_name=m["agent_name"],
        issued_at=m["issued_at"],
        expires_at=m["expires_at"],
        kid=m["kid"],
        revoked_at=m["revoked_at"],
    )


def _operator_row(o: Operator) -> dict[str, Any]:
    return {
        "id": o.id,
        "name": o.name,
        "role": o.role.value,
        "token_hash": o.token_hash,
        "created_at": float(o.created_at),
        "disabled": bool(o.disabled),
        "human": o.human,
        "expires_at": o.expires_at,
    }


def _operator(m: RowMapping) -> Operator:
    return Operator(
        id=m["id"],
        name=m["name"],
        role=OperatorRole(m["role"]),
        token_hash=m["token_hash"],
        created_at=m["created_at"],
        disabled=bool(m["disabled"]),
        human=m["human"],
        expires_at=m["expires_at"],
    )


def _approval_row(a: ApprovalRequest) -> dict[str, Any]:
    return {
        "id": a.id,
        "status": ApprovalStatus(a.status).value,
        "digest": a.digest,
        "agent": a.agent,
        "owner": a.owner,
        "task_id": a.task_id,
        "action": a.action,
        "resource_type": a.resource_type,
        "resource_id": a.resource_id,
        "arguments": _dump(a.arguments),
        "policies": _dump(list(a.policies)),
        "chain": _dump(list(a.chain)),
        "level": int(a.level),
        "escalate_after": float(a.escalate_after),
        "escalate_at": float(a.escalate_at),
        "created_at": float(a.created_at),
        "updated_at": float(a.updated_at),
        "source": a.source,
        "on_behalf_of": a.on_behalf_of,
        "separation_of_duties": bool(a.separation_of_duties),
        "evaluation_id": a.evaluation_id,
        "coalesced": int(a.coalesced),
        "decided_by": a.decided_by,
        "decided_at": None if a.decided_at is None else float(a.decided_at),
        "decision_reason": a.decision_reason,
        "decision_auth": _dump(a.decision_auth),
        "seen": _dump(a.seen),
        "grant_expires_at": None if a.grant_expires_at is None else float(a.grant_expires_at),
        "used_at": None if a.used_at is None else float(a.used_at),
        "used_by_decision": a.used_by_decision,
    }


def _approval(m: RowMapping) -> ApprovalRequest:
    return ApprovalRequest(
        id=m["id"],
        status=ApprovalStatus(m["status"]),
        digest=m["digest"],
        agent=m["agent"],
        owner=m["owner"],
        task_id=m["task_id"],
        action=m["action"],
        resource_type=m["resource_type"],
        resource_id=m["resource_id"],
        arguments=json.loads(m["arguments"]),
        policies=_load_tuple(m["policies"]),
        chain=_load_tuple(m["chain"]),
        level=int(m["level"]),
        escalate_after=m["escalate_after"],
        escalate_at=m["escalate_at"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        source=m["source"],
        on_behalf_of=m["on_behalf_of"],
        separation_of_duties=bool(m["separation_of_duties"]),
        evaluation_id=m["evaluation_id"],
        coalesced=int(m["coalesced"]),
        decided_by=m["decided_by"],
        decided_at=m["decided_at"],
        decision_reason=m["decision_reason"],
        decision_auth=json.loads(m["decision_auth"]),
        seen=json.loads(m["seen"]),
        grant_expires_at=m["grant_expires_at"],
        used_at=m["used_at"],
        used_by_decision=m["used_by_decision"],
    )


def _finding_row(f: Finding) -> dict[str, Any]:
    return {
        "id": f.id,
        "agent": f.agent,
        "detector": f.detector,
        "severity": Severity(f.severity).value,
        "summary": f.summary,
        "created_at": float(f.created_at),
        "facts": _dump(f.facts),
        "task_id": f.task_id,
        "decision_id": f.decision_id,
        "score": int(f.score),
        "actions": _dump(list(f.actions)),
    }


def _finding(m: RowMapping) -> Finding:
    return Finding(
        id=m["id"],
        agent=m["agent"],
        detector=m["detector"],
        severity=Severity(m["severity"]),
        summary=m["summary"],
        created_at=m["created_at"],
        facts=json.loads(m["facts"]),
        task_id=m["task_id"],
        decision_id=m["decision_id"],
        score=int(m["score"]),
        actions=_load_tuple(m["actions"]),
    )


def _mode(m: RowMapping) -> ModeSetting:
    return ModeSetting(
        kind=m["kind"],
        value=m["value"],
        mode=EnforcementMode(m["mode"]),
        updated_at=m["updated_at"],
        updated_by=m["updated_by"],
    )


def _audit(m: RowMapping) -> AuditRecord:
    return AuditRecord(
        seq=m["seq"],
        ts=m["ts"],
        type=m["type"],
        actor=m["actor"],
        data=json.loads(m["data"]),
        agent=m["agent"],
        task_id=m["task_id"],
        decision_id=m["decision_id"],
        prev_hash=m["prev_hash"],
        hash=m["hash"],
    )


def _entry_row(e: RegistrationEntry) -> dict[str, Any]:
    selectors = _dump(sorted(e.selectors))
    return {
        "id": e.id,
        "agent_name": e.agent_name,
        "selectors": selectors,
        "selectors_key": hashlib.sha256(selectors.encode()).hexdigest(),
        "created_at": float(e.created_at),
        "created_by": e.created_by,
        "description": e.description,
    }


def _entry(m: RowMapping) -> RegistrationEntry:
    return RegistrationEntry(
        id=m["id"],
        agent_name=m["agent_name"],
        selectors=_load_tuple(m["selectors"]),
        created_at=m["created_at"],
        created_by=m["created_by"],
        description=m["description"],
    )


def _join_token(m: RowMapping) -> JoinToken:
    return JoinToken(
        id=m["id"],
        agent_name=m["agent_name"],
        secret_hash=m["secret_hash"],
        created_at=m["created_at"],
        expires_at=m["expires_at"],
        created_by=m["created_by"],
        used_at=m["used_at"],
    )


def _before(conn: Connection, table: sa.Table, after: str) -> sa.ColumnElement[bool]:
    """Keyset paging, newest first: rows strictly before the row ``after`` (by created_at, id)."""
    cursor = (
        conn.execute(sa.select(table.c.created_at).where(table.c.id == after)).scalars().first()
    )
    if cursor is None:
        raise InvalidParameterError(f"unknown page cursor `{after}`")
    return sa.tuple_(table.c.created_at, table.c.id) < sa.tuple_(
        sa.literal(cursor, sa.Double()), sa.literal(after)
    )


def _limit(limit: int) -> int:
    # A negative LIMIT means "no limit" on SQLite and is an error on PostgreSQL.
    return max(0, int(limit))


def _credential_in(conn: Connection, jti: str) -> Credential:
    row = conn.execute(sa.select(credentials).where(credentials.c.jti == jti)).mappings().first()
    if row is None:
        raise NotFoundError("credential not found")
    return _credential(row)


def _final_status(task_id: str, status: TaskStatus) -> TaskStatus:
    final = TaskStatus(status)
    if final is TaskStatus.ACTIVE:
        raise InvalidParameterError(f"cannot end task `{task_id}` with status `active`")
    return final


def _end_one(
    conn: Connection, task_id: str, final: TaskStatus, when: float, reason: str
) -> tuple[Task, list[Credential]]:
    """End one active task and revoke its credentials, inside the caller's transaction.

    Two statements with RETURNING (SQLite 3.35+, PostgreSQL): ending a task is on the kill
    switch's path, so every round trip to the database counts.
    """
    row = (
        conn.execute(
            sa.update(tasks)
            .where(tasks.c.id == task_id, tasks.c.status == _ACTIVE)
            .values(status=final.value, ended_at=when, end_reason=reason)
            .returning(*tasks.c)
        )
        .mappings()
        .first()
    )
    if row is None:
        current = conn.execute(
            sa.select(tasks.c.status).where(tasks.c.id == task_id)
        ).scalar_one_or_none()
        if current is None:
            raise NotFoundError(f"task `{task_id}` not found")
        raise ConflictError(f"task `{task_id}` has already ended (status `{current}`)")
    # The task row is now locked by this transaction (and SQLite holds the write lock), so no
    # credential can be added to it between the update above and this one.
    revoked = [
        _credential(m)
        for m in conn.execute(
            sa.update(credentials)
            .where(credentials.c.task_id == task_id, credentials.c.revoked_at.is_(None))
            .values(revoked_at=when)
            .returning(*credentials.c)
        ).mappings()
    ]
    revoked.sort(key=lambda c: (c.issued_at, c.jti))
    return _task(row), revoked


# --- the store ----------------------------------------------------------------------------


class SQLStore(
    LifecycleStoreMixin, IntegrityStoreMixin, GovernanceSQL, SignalsSQL, PolicyStoreMixin
):
    """The system of record on SQLite or PostgreSQL. Create with ``open_store(url)``."""

    def __init__(self, url: str | URL, *, echo: bool = False) -> None:
        self._url = normalize_url(url)
        self._engine, memory = _create_engine(self._url, echo=echo)
        self._postgres = self._url.get_backend_name() == "postgresql"
        # An in-memory SQLite database is a single shared connection: take turns on it.
        self._serial: AbstractContextManager[Any] = threading.RLock() if memory else nullcontext()

    # -- plumbing ------------------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._url.get_backend_name()

    def __repr__(self) -> str:
        return f"SQLStore({self._url.render_as_string(hide_password=True)!r})"

    def __enter__(self) -> SQLStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def _tx(self, *, write: bool, conflict: str | None = None) -> Iterator[Connection]:
        """One transaction; driver errors come out as ConflictError / StorageError."""
        try:
            with self._serial, self._engine.connect() as conn:
                if write:
                    conn.execution_options(**{_WRITE_OPTION: True})
                with conn.begin():
                    yield conn
        except WardenError:
            raise
        except IntegrityError as exc:
            raise ConflictError(conflict or f"conflicting change: {_describe(exc)}") from exc
        except OperationalError as exc:
            # unreachable, locked, full or read-only: the database is unavailable, not wrong
            raise DatabaseUnavailableError(f"database unavailable: {_describe(exc)}") from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise DatabaseUnavailableError(f"database unavailable: {_describe(exc)}") from exc
            raise StorageError(f"storage error: {_describe(exc)}") from exc
        except SQLAlchemyError as exc:
            raise StorageError(f"storage error: {_describe(exc)}") from exc

    def _lock(self, conn: Connection, key: int) -> None:
        """Serialise with other processes (PostgreSQL; SQLite holds the write lock already)."""
        if self._postgres:
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))

    # -- lifecycle -------------------------------------------------------------------------

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (idempotent, concurrency-safe)."""
        from alembic import command
        from alembic.util.exc import CommandError

        from warden.storage.sql.migrations import alembic_config

        try:
            with self._tx(write=True) as conn:
                self._lock(conn, MIGRATE_LOCK_KEY)
                command.upgrade(alembic_config(conn), "head")
        except CommandError as exc:
            raise StorageError(f"cannot migrate the database schema: {exc}") from exc

    def close(self) -> None:
        self._engine.dispose()

    # -- humans ----------------------------------------------------------------------------

    def upsert_human(self, human: Human) -> Human:
        with self._tx(write=True) as conn:
            insert = self._insert(conn, humans).values(**_human_row(human))
            conn.execute(insert.on_conflict_do_nothing(index_elements=["id"]))
            row = conn.execute(sa.select(humans).where(humans.c.id == human.id)).mappings().one()
            return _human(row)

    def fetch_human(self, human_id: str) -> Human:
        return _human(
            fetch_one(
                self._tx,
                sa.select(humans).where(humans.c.id == human_id),
                f"human `{human_id}` not found",
            )
        )

    def update_human(self, human: Human) -> None:
        values = _human_row(human)
        del values["id"]
        with self._tx(write=True) as conn:
            result = conn.execute(sa.update(humans).where(humans.c.id == human.id).values(values))
            if result.rowcount == 0:
                raise NotFoundError(f"human `{human.id}` not found")

    # -- agents ----------------------------------------------------------------------------

    def create_agent(self, agent: Agent) -> None:
        conflict = f"agent `{agent.name}` or SPIFFE ID `{agent.spiffe_id}` already exists"
        with self._tx(write=True, conflict=conflict) as conn:
            taken = (
                conn.execute(
                    sa.select(agents.c.name, agents.c.spiffe_id)
                    .where((agents.c.name == agent.name) | (agents.c.spiffe_id == agent.spiffe_id))
                    .limit(1)
                )
                .mappings()
                .first()
            )
            if taken is not None:
                if taken["name"] == agent.name:
                    raise ConflictError(f"agent `{agent.name}` already exists")
                raise ConflictError(
                    f"SPIFFE ID `{agent.spiffe_id}` is already registered to agent "
                    f"`{taken['name']}`"
                )
            conn.execute(sa.insert(agents).values(**_agent_row(agent)))

    def fetch_agent(self, name: str) -> Agent:
        return _agent(
            fetch_one(
                self._tx,
                sa.select(agents).where(agents.c.name == name),
                f"agent `{name}` not found",
            )
        )

    def fetch_agent_by_spiffe_id(self, spiffe_id: str) -> Agent:
        return _agent(
            fetch_one(
                self._tx,
                sa.select(agents).where(agents.c.spiffe_id == spiffe_id),
                f"no agent has SPIFFE ID `{spiffe_id}`",
            )
        )

    def list_agents(
        self,
        *,
        status: AgentStatus | None = None,
        owner: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[Agent]:
        query = sa.select(agents).order_by(agents.c.name).limit(_limit(limit))
        if status is not None:
            query = query.where(agents.c.status == AgentStatus(status).value)
        if owner is not None:
            query = query.where(agents.c.owner == owner)
        if after is not None:
            query = query.where(agents.c.name > after)
        with self._tx(write=False) as conn:
            return [_agent(m) for m in conn.execute(query).mappings()]

    def update_agent(self, agent: Agent) -> None:
        values = _agent_row(agent)
        del values["name"]
        conflict = f"SPIFFE ID `{agent.spiffe_id}` is already registered to another agent"
        with self._tx(write=True, conflict=conflict) as conn:
            result = conn.execute(
                sa.update(agents).where(agents.c.name == agent.name).values(values)
            )
            if result.rowcount == 0:
                raise NotFoundError(f"agent `{agent.name}` not found")

    # -- tasks and credentials -----------------------------------------------------------

    def create_task(
        self, task: Task, credential: Credential, audit: Sequence[AuditDraft] = ()
    ) -> list[AuditRecord]:
        """Insert the task, its first credential and (in the same transaction, ADR 0090) the
        audit records of their issuance; returns those records."""
        if credential.task_id != task.id:
            raise InvalidParameterError(
                f"credential `{credential.jti}` belongs to task `{credential.task_id}`, "
                f"not `{task.id}`"
            )
        prepared = [prepare_draft(d) for d in audit]
        conflict = f"task `{task.id}` or credential `{credential.jti}` already exists"
        with self._tx(write=True, conflict=conflict) as conn:
            conn.execute(sa.insert(tasks).values(**_task_row(task)))
            conn.execute(sa.insert(credentials).values(**_credential_row(credential)))
            return self._append_chain(conn, prepared) if prepared else []

    def create_credential(
        self, credential: Credential, audit: Sequence[AuditDraft] = ()
    ) -> list[AuditRecord]:
        """Record another credential for an active task, with its issuance records.

        NotFoundError if the task is unknown, ConflictError if it is no longer active (the task
        row is locked, so this cannot race with ``end_task``) or the jti is taken.
        """
        prepared = [prepare_draft(d) for d in audit]
        conflict = f"credential `{credential.jti}` already exists"
        with self._tx(write=True, conflict=conflict) as conn:
            status = conn.execute(
                sa.select(tasks.c.status).where(tasks.c.id == credential.task_id).with_for_update()
            ).scalar_one_or_none()
            if status is None:
                raise NotFoundError(f"task `{credential.task_id}` not found")
            if status != _ACTIVE:
                raise ConflictError(f"task `{credential.task_id}` is not active (it is {status})")
            conn.execute(sa.insert(credentials).values(**_credential_row(credential)))
            return self._append_chain(conn, prepared) if prepared else []

    def fetch_task(self, task_id: str) -> Task:
        return _task(
            fetch_one(
                self._tx,
                sa.select(tasks).where(tasks.c.id == task_id),
                f"task `{task_id}` not found",
            )
        )

    def list_tasks(
        self,
        *,
        agent: str | None = None,
        status: TaskStatus | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[Task]:
        query = (
            sa.select(tasks)
            .order_by(tasks.c.created_at.desc(), tasks.c.id.desc())
            .limit(_limit(limit))
        )
        if agent is not None:
            query = query.where(tasks.c.agent_name == agent)
        if status is not None:
            query = query.where(tasks.c.status == TaskStatus(status).value)
        with self._tx(write=False) as conn:
            if after is not None:
                cursor = (
                    conn.execute(
                        sa.select(tasks.c.created_at, tasks.c.id).where(tasks.c.id == after)
                    )
                    .mappings()
                    .first()
                )
                if cursor is None:
                    raise InvalidParameterError(f"unknown task `{after}` given as `after`")
                query = query.where(
                    sa.tuple_(tasks.c.created_at, tasks.c.id)
                    < sa.tuple_(sa.literal(cursor["created_at"], sa.Double()), sa.literal(after))
                )
            return [_task(m) for m in conn.execute(query).mappings()]

    def list_active_tasks(self, *, batch: int = 500) -> Iterator[Task]:
        """Every active task, ordered by id, fetched in keyset batches (no long transaction)."""
        size = max(1, batch)
        last: str | None = None
        while True:
            query = (
                sa.select(tasks).where(tasks.c.status == _ACTIVE).order_by(tasks.c.id).limit(size)
            )
            if last is not None:
                query = query.where(tasks.c.id > last)
            with self._tx(write=False) as conn:
                page = [_task(m) for m in conn.execute(query).mappings()]
            yield from page
            if len(page) < size:
                return
            last = page[-1].id

    def end_task(
        self, task_id: str, status: TaskStatus, *, ended_at: float, reason: str
    ) -> tuple[Task, list[Credential]]:
        final = _final_status(task_id, status)
        with self._tx(write=True) as conn:
            return _end_one(conn, task_id, final, float(ended_at), reason)

    def end_task_tree(
        self, task_id: str, status: TaskStatus, *, ended_at: float, reason: str
    ) -> list[tuple[Task, list[Credential]]]:
        final = _final_status(task_id, status)
        when = float(ended_at)
        with self._tx(write=True) as conn:
            ended = [_end_one(conn, task_id, final, when, reason)]
            cascade = f"parent task {task_id} {final.value}"
            frontier = [task_id]
            # Walk every generation (ended children too: their subtrees may still hold active
            # tasks); parent_id links form a tree, and the walk is bounded by the table anyway.
            while frontier:
                children = conn.execute(
                    sa.select(tasks.c.id, tasks.c.status)
                    .where(tasks.c.parent_id.in_(frontier))
                    .order_by(tasks.c.created_at, tasks.c.id)
                ).all()
                frontier = []
                for child_id, child_status in children:
                    frontier.append(child_id)
                    if child_status == _ACTIVE:
                        ended.append(_end_one(conn, child_id, TaskStatus.REVOKED, when, cascade))
            return ended

    def list_child_tasks(self, parent_id: str) -> list[Task]:
        query = (
            sa.select(tasks)
            .where(tasks.c.parent_id == parent_id)
            .order_by(tasks.c.created_at, tasks.c.id)
        )
        with self._tx(write=False) as conn:
            return [_task(m) for m in conn.execute(query).mappings()]

    def fetch_credential(self, jti: str) -> Credential:
        with self._tx(write=False) as conn:
            return _credential_in(conn, jti)

    def revoke_credential(self, jti: str, *, revoked_at: float) -> Credential:
        with self._tx(write=True) as conn:
            conn.execute(
                sa.update(credentials)
                .where(credentials.c.jti == jti, credentials.c.revoked_at.is_(None))
                .values(revoked_at=float(revoked_at))
            )
            return _credential_in(conn, jti)

    def list_credentials(self, task_id: str) -> list[Credential]:
        """The task's credentials, oldest first (empty for an unknown task)."""
        query = (
            sa.select(credentials)
            .where(credentials.c.task_id == task_id)
            .order_by(credentials.c.issued_at, credentials.c.jti)
        )
        with self._tx(write=False) as conn:
            return [_credential(m) for m in conn.execute(query).mappings()]

    def list_revoked_credentials(self, *, not_expired_at: float) -> list[Credential]:
        query = (
            sa.select(credentials)
            .where(
                credentials.c.revoked_at.is_not(None),
                credentials.c.expires_at > float(not_expired_at),
            )
            .order_by(credentials.c.expires_at, credentials.c.jti)
        )
        with self._tx(write=False) as conn:
            return [_credential(m) for m in conn.execute(query).mappings()]

    # -- registration entries and join tokens ---------------------------------------------

    def create_entry(self, entry: RegistrationEntry) -> None:
        row = _entry_row(entry)
        with self._tx(write=True, conflict=f"entry `{entry.id}` already exists") as conn:
            owner = conn.execute(
                sa.select(agents.c.name).where(agents.c.name == entry.agent_name)
            ).scalar_one_or_none()
            if owner is None:
                raise NotFoundError(f"agent `{entry.agent_name}` not found")
            holder = conn.execute(
                sa.select(registration_entries.c.id, registration_entries.c.agent_name).where(
                    registration_entries.c.selectors_key == row["selectors_key"]
                )
            ).first()
            if holder is not None:
                raise ConflictError(
                    f"entry `{holder[0]}` of agent `{holder[1]}` already has these selectors"
                )
            conn.execute(sa.insert(registration_entries).values(**row))

    def fetch_entry(self, entry_id: str) -> RegistrationEntry:
        return _entry(
            fetch_one(
                self._tx,
                sa.select(registration_entries).where(registration_entries.c.id == entry_id),
                f"entry `{entry_id}` not found",
            )
        )

    def list_entries(self, *, agent: str | None = None) -> list[RegistrationEntry]:
        query = sa.select(registration_entries).order_by(
            registration_entries.c.agent_name, registration_entries.c.id
        )
        if agent is not None:
            query = query.where(registration_entries.c.agent_name == agent)
        with self._tx(write=False) as conn:
            return [_entry(m) for m in conn.execute(query).mappings()]

    def delete_entry(self, entry_id: str) -> None:
        with self._tx(write=True) as conn:
            result = conn.execute(
                sa.delete(registration_entries).where(registration_entries.c.id == entry_id)
            )
            if result.rowcount == 0:
                raise NotFoundError(f"entry `{entry_id}` not found")

    def create_join_token(self, token: JoinToken) -> None:
        row = {
            "id": token.id,
            "agent_name": token.agent_name,
            "secret_hash": token.secret_hash,
            "created_at": float(token.created_at),
            "expires_at": float(token.expires_at),
            "created_by": token.created_by,
            "used_at": None if token.used_at is None else float(token.used_at),
        }
        with self._tx(write=True, conflict=f"join token `{token.id}` already exists") as conn:
            owner = conn.execute(
                sa.select(agents.c.name).where(agents.c.name == token.agent_name)
            ).scalar_one_or_none()
            if owner is None:
                raise NotFoundError(f"agent `{token.agent_name}` not found")
            conn.execute(sa.insert(join_tokens).values(**row))

    def fetch_join_token(self, token_id: str) -> JoinToken:
        return _join_token(
            fetch_one(
                self._tx,
                sa.select(join_tokens).where(join_tokens.c.id == token_id),
                f"join token `{token_id}` not found",
            )
        )

    def consume_join_token(self, token_id: str, *, now: float) -> JoinToken:
        """Mark the token used, atomically: one caller wins, every other gets ConflictError."""
        c = join_tokens.c
        with self._tx(write=True) as conn:
            updated = conn.execute(
                sa.update(join_tokens)
                .where(c.id == token_id, c.used_at.is_(None), c.expires_at > float(now))
                .values(used_at=float(now))
            )
            row = conn.execute(sa.select(join_tokens).where(c.id == token_id)).mappings().first()
            if row is None:
                raise NotFoundError(f"join token `{token_id}` not found")
            token = _join_token(row)
            if updated.rowcount == 0:
                state = "already used" if token.used_at is not None else "expired"
                raise ConflictError(f"join token `{token_id}` is {state}")
            return token

    # -- operators -------------------------------------------------------------------------

    def create_operator(self, operator: Operator) -> None:
        conflict = f"operator `{operator.id}` already exists or its token is already in use"
        with self._tx(write=True, conflict=conflict) as conn:
            taken = (
                conn.execute(
                    sa.select(operators.c.id)
                    .where(
                        (operators.c.id == operator.id)
                        | (operators.c.token_hash == operator.token_hash)
                    )
                    .limit(1)
                )
                .scalars()
                .first()
            )
            if taken == operator.id:
                raise ConflictError(f"operator `{operator.id}` already exists")
            if taken is not None:
                raise ConflictError(f"another operator already uses the token of `{operator.id}`")
            conn.execute(sa.insert(operators).values(**_operator_row(operator)))

    def fetch_operator_by_token_hash(self, token_hash: str) -> Operator:
        # never echo the hash: it identifies a credential
        return _operator(
            fetch_one(
                self._tx,
                sa.select(operators).where(operators.c.token_hash == token_hash),
                "no operator has this token",
            )
        )

    def update_operator(self, operator: Operator) -> None:
        values = _operator_row(operator)
        del values["id"]
        conflict = f"another operator already uses the token of `{operator.id}`"
        with self._tx(write=True, conflict=conflict) as conn:
            result = conn.execute(
                sa.update(operators).where(operators.c.id == operator.id).values(values)
            )
            if result.rowcount == 0:
                raise NotFoundError(f"operator `{operator.id}` not found")

    def list_operators(self) -> list[Operator]:
        query = sa.select(operators).order_by(operators.c.name, operators.c.id)
        with self._tx(write=False) as conn:
            return [_operator(m) for m in conn.execute(query).mappings()]

    # -- approvals ---------------------------------------------------------------------------

    def create_approval(self, request: ApprovalRequest) -> None:
        with self._tx(write=True, conflict=f"approval `{request.id}` already exists") as conn:
            conn.execute(sa.insert(approvals).values(**_approval_row(request)))

    def fetch_approval(self, request_id: str) -> ApprovalRequest:
        return _approval(
            fetch_one(
                self._tx,
                sa.select(approvals).where(approvals.c.id == request_id),
                f"approval request `{request_id}` not found",
            )
        )

    def update_approval(
        self, request: ApprovalRequest, *, expect_status: ApprovalStatus
    ) -> ApprovalRequest:
        values = _approval_row(request)
        del values["id"]
        with self._tx(write=True) as conn:
            result = conn.execute(
                sa.update(approvals)
                .where(
                    approvals.c.id == request.id,
                    approvals.c.status == ApprovalStatus(expect_status).value,
                )
                .values(values)
            )
            if result.rowcount == 0:
                row = (
                    conn.execute(sa.select(approvals.c.status).where(approvals.c.id == request.id))
                    .scalars()
                    .first()
                )
                if row is None:
                    raise NotFoundError(f"approval request `{request.id}` not found")
                raise ApprovalClosedError(
                    f"approval request `{request.id}` is {row}, not {expect_status.value}",
                    detail={"status": row},
                )
        return request

    def use_approval(self, request_id: str, *, used_at: float, decision_id: str) -> bool:
        with self._tx(write=True) as conn:
            result = conn.execute(
                sa.update(approvals)
                .where(
                    approvals.c.id == request_id,
                    approvals.c.status == ApprovalStatus.APPROVED.value,
                    approvals.c.used_at.is_(None),
                    approvals.c.grant_expires_at > float(used_at),
                )
                .values(used_at=float(used_at), used_by_decision=decision_id, updated_at=used_at)
            )
            return bool(result.rowcount == 1)

    def list_approvals(
        self,
        *,
        status: ApprovalStatus | None = None,
        agent: str | None = None,
        updated_since: float | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[ApprovalRequest]:
        query = sa.select(approvals).limit(_limit(limit))
        if updated_since is not None:
            query = query.where(approvals.c.updated_at >= float(updated_since)).order_by(
                approvals.c.updated_at, approvals.c.id
            )
        else:
            query = query.order_by(approvals.c.created_at.desc(), approvals.c.id.desc())
        if status is not None:
            query = query.where(approvals.c.status == ApprovalStatus(status).value)
        if agent is not None:
            query = query.where(approvals.c.agent == agent)
        with self._tx(write=False) as conn:
            if after is not None:
                query = query.where(_before(conn, approvals, after))
            return [_approval(m) for m in conn.execute(query).mappings()]

    # -- behaviour -------------------------------------------------------------------------

    def create_findings(self, items: Sequence[Finding]) -> None:
        if not items:
            return
        with self._tx(write=True, conflict="a finding with this id already exists") as conn:
            conn.execute(sa.insert(findings), [_finding_row(f) for f in items])

    def list_findings(
        self,
        *,
        agent: str | None = None,
        severity: str | None = None,
        since: float | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[Finding]:
        query = (
            sa.select(findings)
            .order_by(findings.c.created_at.desc(), findings.c.id.desc())
            .limit(_limit(limit))
        )
        if agent is not None:
            query = query.where(findings.c.agent == agent)
        if severity is not None:
            query = query.where(findings.c.severity == Severity(severity).value)
        if since is not None:
            query = query.where(findings.c.created_at >= float(since))
        with self._tx(write=False) as conn:
            if after is not None:
                query = query.where(_before(conn, findings, after))
            return [_finding(m) for m in conn.execute(query).mappings()]

    def put_baseline(self, baseline: Baseline) -> None:
        values = {
            "agent": baseline.agent,
            "declared": _dump(baseline.declared),
            "learned": _dump(baseline.learned),
            "updated_at": float(baseline.updated_at),
        }
        with self._tx(write=True) as conn:
            insert = self._insert(conn, agent_baselines).values(**values)
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=["agent"],
                    set_={k: values[k] for k in ("declared", "learned", "updated_at")},
                )
            )

    def list_baselines(self) -> list[Baseline]:
        query = sa.select(agent_baselines).order_by(agent_baselines.c.agent)
        with self._tx(write=False) as conn:
            return [
                Baseline(
                    agent=m["agent"],
                    declared=json.loads(m["declared"]),
                    learned=json.loads(m["learned"]),
                    updated_at=m["updated_at"],
                )
                for m in conn.execute(query).mappings()
            ]

    # -- enforcement modes ---------------------------------------------------------------

    def set_mode(self, setting: ModeSetting) -> None:
        values = {
            "kind": setting.kind,
            "value": setting.value,
            "mode": EnforcementMode(setting.mode).value,
            "updated_at": float(setting.updated_at),
            "updated_by": setting.updated_by,
        }
        with self._tx(write=True) as conn:
            insert = self._insert(conn, enforcement_modes).values(**values)
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=["kind", "value"],
                    set_={k: values[k] for k in ("mode", "updated_at", "updated_by")},
                )
            )

    def delete_mode(self, kind: str, value: str) -> None:
        """Remove an override; NotFoundError if there is none for (kind, value)."""
        with self._tx(write=True) as conn:
            result = conn.execute(
                sa.delete(enforcement_modes).where(
                    enforcement_modes.c.kind == kind, enforcement_modes.c.value == value
                )
            )
            if result.rowcount == 0:
                raise NotFoundError(f"no enforcement mode is set for {kind} `{value}`")

    def list_modes(self) -> list[ModeSetting]:
        query = sa.select(enforcement_modes).order_by(
            enforcement_modes.c.kind, enforcement_modes.c.value
        )
        with self._tx(write=False) as conn:
            return [_mode(m) for m in conn.execute(query).mappings()]

    # -- audit -------------------------------------------------------------------------------

    def append_audit(self, drafts: Sequence[AuditDraft]) -> list[AuditRecord]:
        if not drafts:
            return []
        prepared = [prepare_draft(d) for d in drafts]
        with self._tx(write=True) as conn:
            return self._append_chain(conn, prepared)

    def _append_chain(
        self, conn: Connection, prepared: Sequence[tuple[AuditDraft, str]]
    ) -> list[AuditRecord]:
        """Seal and insert records after the chain head, inside the caller's transaction.

        The head is read under the audit lock (an advisory lock on PostgreSQL, the write lock
        SQLite's BEGIN IMMEDIATE holds), so every appender — the writer's batches and the
        issuance records beside task rows — extends one gap-free chain.
        """
        records: list[AuditRecord] = []
        rows: list[dict[str, Any]] = []
        self._lock(conn, AUDIT_LOCK_KEY)
        head = conn.execute(
            sa.select(audit_events.c.seq, audit_events.c.hash)
            .order_by(audit_events.c.seq.desc())
            .limit(1)
        ).first()
        seq, prev = (int(head[0]), str(head[1])) if head is not None else (0, GENESIS_HASH)
        for draft, data_text in prepared:
            seq += 1
            record = seal(seq, prev, draft)
            prev = record.hash
            records.append(record)
            rows.append(
                {
                    "seq": seq,
                    "ts": record.ts,
                    "type": record.type,
                    "actor": record.actor,
                    "agent": record.agent,
                    "task_id": record.task_id,
                    "decision_id": record.decision_id,
                    "data": data_text,
                    "prev_hash": record.prev_hash,
                    "hash": record.hash,
                }
            )
        conn.execute(sa.insert(audit_events), rows)
        return records

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
        """Ascending by seq after ``after_seq``; ``since`` is inclusive, ``until`` exclusive."""
        c = audit_events.c
        query = sa.select(audit_events).where(c.seq > after_seq).order_by(c.seq)
        if type_prefix:
            query = query.where(c.type.startswith(type_prefix, autoescape=True))
        if agent is not None:
            query = query.where(c.agent == agent)
        if task_id is not None:
            query = query.where(c.task_id == task_id)
        if since is not None:
            query = query.where(c.ts >= float(since))
        if until is not None:
            query = query.where(c.ts < float(until))
        with self._tx(write=False) as conn:
            return self._audit_rows(conn, query.limit(_limit(limit)))

    def _audit_rows(self, conn: Connection, query: sa.Select[Any]) -> list[AuditRecord]:
        return [_audit(m) for m in conn.execute(query).mappings()]

    def iter_audit(self, *, batch: int = 1000) -> Iterator[AuditRecord]:
        size = max(1, batch)
        last = 0
        while True:
            query = (
                sa.select(audit_events)
                .where(audit_events.c.seq > last)
                .order_by(audit_events.c.seq)
                .limit(size)
            )
            with self._tx(write=False) as conn:
                page = [_audit(m) for m in conn.execute(query).mappings()]
            yield from page
            if len(page) < size:
                return
            last = page[-1].seq

    def audit_head(self) -> tuple[int, str]:
        with self._tx(write=False) as conn:
            head = conn.execute(
                sa.select(audit_events.c.seq, audit_events.c.hash)
                .order_by(audit_events.c.seq.desc())
                .limit(1)
            ).first()
        if head is None:
            return 0, GENESIS_HASH
        return int(head[0]), str(head[1])

    # -- helpers ---------------------------------------------------------------------------

    def _insert(
        self, conn: Connection, table: sa.Table
    ) -> pg_dialect.Insert | sqlite_dialect.Insert:
        if conn.dialect.name == "postgresql":
            return pg_dialect.insert(table)
        return sqlite_dialect.insert(table)


def open_store(url: str) -> SQLStore:
    """A store for ``url`` (``sqlite:///path``, ``postgresql://...``). Call ``migrate()`` next."""
    return SQLStore(url)
