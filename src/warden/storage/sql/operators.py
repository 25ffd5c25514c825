"""Operators: ``OperatorStore`` over SQL."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from warden.core.model import (
    Operator,
    OperatorRole,
)
from warden.errors import (
    ConflictError,
    NotFoundError,
)
from warden.storage.sql.engine import SQLBase
from warden.storage.sql.rows import fetch_one
from warden.storage.sql.tables import (
    operators,
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


class OperatorSQL(SQLBase):
    """``OperatorStore``."""

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
