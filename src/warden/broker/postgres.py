"""Temporary PostgreSQL login roles on a lease target (psycopg 3).

``create_role`` runs in ONE transaction (PostgreSQL DDL is transactional): the role with
``LOGIN``, a SCRAM-SHA-256 verifier computed here (so the password itself never reaches the
server, its logs or ``pg_stat_statements``), ``VALID UNTIL`` the lease's end, a connection limit
and no special attributes; then the template's grants. Any error rolls all of it back.

``drop_role`` is what revocation does, in an order that closes every way back in:
``NOLOGIN`` (no new sessions) → terminate the role's sessions and wait for them to go →
``DROP OWNED`` (its privileges and anything it created in the target database) → ``DROP ROLE`` →
check the role is gone. Only then does it return; any failure raises ``LeaseError`` and the
caller keeps the lease as "revoking" and retries.

The broker's own login (the target's ``dsn``) needs ``CREATEROLE`` and the grant options on the
template's objects (or to own them); PostgreSQL 16+ gives a ``CREATEROLE`` user admin rights only
over roles it created, which is exactly the set Warden touches.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from datetime import UTC, datetime

import psycopg
from psycopg import sql

from warden.broker.templates import OBJECT_KINDS, PostgresTarget
from warden.errors import LeaseError

__all__ = ["PostgresBroker", "scram_sha256_verifier"]

SCRAM_ITERATIONS = 4096


def scram_sha256_verifier(password: str, *, salt: bytes | None = None) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for ``password`` (RFC 5802 / RFC 7677).

    ``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`` (standard base64). PostgreSQL
    stores a verifier given to ``CREATE ROLE … PASSWORD`` as is. Passwords here are ASCII, for
    which SASLprep is the identity.
    """
    salt = secrets.token_bytes(16) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, SCRAM_ITERATIONS)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    return f"SCRAM-SHA-256${SCRAM_ITERATIONS}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def _grant_statements(target: PostgresTarget, role: str) -> list[sql.Composed]:
    out = []
    for grant in target.grants:
        words, _, _ = OBJECT_KINDS[grant.on]
        out.append(
            sql.SQL("GRANT {privileges} ON {kind} {objects} TO {role}").format(
                privileges=sql.SQL(", ").join(sql.SQL(p) for p in grant.privileges),
                kind=sql.SQL(words),
                objects=sql.SQL(", ").join(sql.Identifier(*parts) for parts in grant.objects),
                role=sql.Identifier(role),
            )
        )
    for member in target.member_of:
        out.append(
            sql.SQL("GRANT {granted} TO {role}").format(
                granted=sql.Identifier(member), role=sql.Identifier(role)
            )
        )
    return out


def _describe(exc: psycopg.Error) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


class PostgresBroker:
    """Creates and drops lease roles on one target; see the module docstring."""

    def __init__(
        self,
        target: PostgresTarget,
        *,
        connect_timeout: int = 5,
        statement_timeout_ms: int = 10_000,
        session_wait: float = 5.0,
    ) -> None:
        self.target = target
        self._connect_timeout = connect_timeout
        self._statement_timeout_ms = statement_timeout_ms
        self._session_wait = session_wait

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        try:
            conn = psycopg.connect(
                self.target.dsn, connect_timeout=self._connect_timeout, autocommit=True
            )
        except psycopg.Error as exc:
            raise LeaseError(
                f"cannot reach lease target `{self.target.name}`: {_describe(exc)}"
            ) from exc
        try:
            timeout = sql.Literal(self._statement_timeout_ms)
            conn.execute(sql.SQL("SET statement_timeout = {}").format(timeout))
            conn.execute(sql.SQL("SET lock_timeout = {}").format(timeout))
        except BaseException:
            conn.close()
            raise
        return conn

    def new_role_name(self) -> str:
        return f"{self.target.role_prefix}{secrets.token_hex(10)}"

    def create_role(self, role: str, password: str, *, valid_until: float) -> None:
        """The role and its grants, all or nothing; LeaseError on any failure."""
        until = datetime.fromtimestamp(valid_until, tz=UTC).isoformat()
        create = sql.SQL(
            "CREATE ROLE {role} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
            "NOBYPASSRLS INHERIT CONNECTION LIMIT {limit} PASSWORD {verifier} VALID UNTIL {until}"
        ).format(
            role=sql.Identifier(role),
            limit=sql.Literal(self.target.connection_limit),
            verifier=sql.Literal(scram_sha256_verifier(password)),
            until=sql.Literal(until),
        )
        try:
            with self._connect() as conn, conn.transaction():
                conn.execute(create)
                for statement in _grant_statements(self.target, role):
                    conn.execute(statement)
        except psycopg.Error as exc:
            raise LeaseError(
                f"lease target `{self.target.name}` refused the role: {_describe(exc)}"
            ) from exc

    def role_exists(self, role: str) -> bool:
        try:
            with self._connect() as conn:
                return self._exists(conn, role)
        except psycopg.Error as exc:
            raise LeaseError(f"lease target `{self.target.name}`: {_describe(exc)}") from exc

    @staticmethod
    def _exists(conn: psycopg.Connection[tuple[object, ...]], role: str) -> bool:
        row = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        return row is not None

    def sessions(self, role: str) -> int:
        try:
            with self._connect() as conn:
                return self._sessions(conn, role)
        except psycopg.Error as exc:
            raise LeaseError(f"lease target `{self.target.name}`: {_describe(exc)}") from exc

    @staticmethod
    def _sessions(conn: psycopg.Connection[tuple[object, ...]], role: str) -> int:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = %s", (role,)
        ).fetchone()
        return int(row[0]) if row else 0  # type: ignore[call-overload]  # count(*) is a bigint

    def drop_role(self, role: str) -> None:
        """Lock out, disconnect and drop ``role``; return only once it is gone (LeaseError)."""
        name = sql.Identifier(role)
        try:
            with self._connect() as conn:
                if not self._exists(conn, role):
                    return
                conn.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(name))
                deadline = time.monotonic() + self._session_wait
                while True:
                    # the two-argument form (PostgreSQL 14+) waits for each backend to exit
                    conn.execute(
                        "SELECT pg_terminate_backend(pid, %s) FROM pg_stat_activity "
                        "WHERE usename = %s",
                        (int(self._session_wait * 1000), role),
                    )
                    if self._sessions(conn, role) == 0:
                        break
                    if time.monotonic() > deadline:
                        raise LeaseError(f"sessions of a lease role on `{self.target.name}` linger")
                    time.sleep(0.01)
                with conn.transaction():
                    # another replica's reaper may have dropped it meanwhile: that is done too
                    if self._exists(conn, role):
                        conn.execute(sql.SQL("DROP OWNED BY {}").format(name))
                        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(name))
                if self._exists(conn, role):
                    raise LeaseError(f"a lease role on `{self.target.name}` is still there")
        except psycopg.Error as exc:
            raise LeaseError(
                f"cannot revoke a lease role on `{self.target.name}`: {_describe(exc)}"
            ) from exc

    def list_roles(self) -> list[str]:
        """Every role on the target whose name starts with this target's role prefix."""
        try:
            with self._connect() as conn:
                rows = conn.execute(
                    "SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s) ORDER BY rolname",
                    (self.target.role_prefix,),
                ).fetchall()
        except psycopg.Error as exc:
            raise LeaseError(f"lease target `{self.target.name}`: {_describe(exc)}") from exc
        return [str(r[0]) for r in rows]
