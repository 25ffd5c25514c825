"""The SQL plumbing shared by every aggregate: URL parsing, engine construction and ``SQLBase``.

Every public method of a store runs in one transaction on a pooled connection (``SQLBase._tx``),
so a store is safe to share between threads. Driver errors are translated: ``IntegrityError`` to
``ConflictError``, any other ``SQLAlchemyError`` to ``StorageError`` (the driver error chained as
``__cause__``); an unreachable, locked, full or read-only database is ``DatabaseUnavailableError``.

SQLite: every connection gets ``busy_timeout``, ``journal_mode=WAL`` and ``foreign_keys=ON``;
pysqlite's own transaction handling is switched off and the store emits ``BEGIN`` itself
(``BEGIN IMMEDIATE`` for writes, so writers queue on the database lock instead of failing
when a read transaction tries to upgrade). PostgreSQL: ``postgresql://`` URLs use psycopg 3;
audit appenders serialise on a transaction-level advisory lock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from types import TracebackType
from typing import Any, Final, Self

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    IntegrityError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.pool import StaticPool

from warden.core.model import (
    TaskStatus,
)
from warden.errors import (
    ConflictError,
    DatabaseUnavailableError,
    InvalidParameterError,
    StorageError,
    WardenError,
)

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


# --- the base every aggregate's mixin extends ---------------------------------------------


class SQLBase:
    """Engine, transactions and dialect helpers shared by every aggregate's SQL (``SQLStore``)."""

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

    def __enter__(self) -> Self:
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

    def _insert(
        self, conn: Connection, table: sa.Table
    ) -> pg_dialect.Insert | sqlite_dialect.Insert:
        if conn.dialect.name == "postgresql":
            return pg_dialect.insert(table)
        return sqlite_dialect.insert(table)
