"""Tasks and their credentials: ``TaskStore`` over SQL."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from warden.core.audit import prepare_draft
from warden.core.model import (
    AuditDraft,
    AuditRecord,
    Credential,
    Task,
    TaskStatus,
)
from warden.errors import (
    ConflictError,
    InvalidParameterError,
    NotFoundError,
)
from warden.storage.sql.audit import append_chain
from warden.storage.sql.codec import dump as _dump
from warden.storage.sql.codec import load_tuple as _load_tuple
from warden.storage.sql.engine import SQLBase
from warden.storage.sql.rows import fetch_one, subtree_cte
from warden.storage.sql.rows import limit as _limit
from warden.storage.sql.tables import (
    credentials,
    tasks,
)

_ACTIVE: Final = TaskStatus.ACTIVE.value


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


class TaskSQL(SQLBase):
    """``TaskStore``: tasks and credentials (their issuance records join the audit chain)."""

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
            return append_chain(self, conn, prepared) if prepared else []

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
            return append_chain(self, conn, prepared) if prepared else []

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

    def task_subtree(self, task_id: str) -> list[Task]:
        tree = subtree_cte(task_id)
        query = (
            sa.select(tasks)
            .where(tasks.c.id.in_(sa.select(tree.c.id)))
            .order_by(tasks.c.created_at, tasks.c.id)
        )
        with self._tx(write=False) as conn:
            found = [_task(m) for m in conn.execute(query).mappings()]
        if not found:
            raise NotFoundError(f"task `{task_id}` not found")
        return found
