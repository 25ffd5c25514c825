"""Sealed signing keys: ``KeyStore`` over SQL."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from warden.core.model import (
    StoredKey,
)
from warden.errors import (
    NotFoundError,
)
from warden.storage.sql.codec import dump
from warden.storage.sql.engine import SQLBase
from warden.storage.sql.tables import (
    credentials,
    leases,
    signing_keys,
)


def _key_row(key: StoredKey) -> dict[str, Any]:
    return {
        "kid": key.kid,
        "generation": int(key.generation),
        "algorithm": key.algorithm,
        "public_jwk": dump(key.public_jwk),
        "sealed_private": key.sealed_private,
        "created_at": float(key.created_at),
        "superseded_at": key.superseded_at,
        "retired_at": key.retired_at,
    }


def _key(m: RowMapping) -> StoredKey:
    return StoredKey(
        kid=m["kid"],
        generation=m["generation"],
        algorithm=m["algorithm"],
        public_jwk=json.loads(m["public_jwk"]),
        sealed_private=m["sealed_private"],
        created_at=m["created_at"],
        superseded_at=m["superseded_at"],
        retired_at=m["retired_at"],
    )


class KeySQL(SQLBase):
    """``KeyStore``."""

    def create_signing_key(self, key: StoredKey) -> None:
        conflict = f"signing key generation {key.generation} already exists"
        with self._tx(write=True, conflict=conflict) as conn:
            conn.execute(sa.insert(signing_keys).values(**_key_row(key)))

    def list_signing_keys(self) -> list[StoredKey]:
        query = sa.select(signing_keys).order_by(signing_keys.c.generation)
        with self._tx(write=False) as conn:
            return [_key(m) for m in conn.execute(query).mappings()]

    def update_signing_key(self, key: StoredKey) -> None:
        values = _key_row(key)
        del values["kid"]
        with self._tx(write=True) as conn:
            result = conn.execute(
                sa.update(signing_keys).where(signing_keys.c.kid == key.kid).values(values)
            )
            if result.rowcount == 0:
                raise NotFoundError(f"signing key `{key.kid}` not found")

    def last_expiry_signed_by(self, kid: str) -> float | None:
        with self._tx(write=False) as conn:
            creds = conn.execute(
                sa.select(sa.func.max(credentials.c.expires_at)).where(credentials.c.kid == kid)
            ).scalar_one_or_none()
            minted = conn.execute(
                sa.select(sa.func.max(leases.c.expires_at)).where(leases.c.kid == kid)
            ).scalar_one_or_none()
        found = [float(v) for v in (creds, minted) if v is not None]
        return max(found) if found else None
