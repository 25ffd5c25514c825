"""Operators (humans using the management API) and their bearer tokens.

Tokens are 256-bit random strings shown once; only their SHA-256 is stored (a fast hash is right
for high-entropy tokens — argon2 is for passwords people choose). On first start the server
creates a bootstrap admin and writes its token to ``<data dir>/admin.token`` (mode 0600).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from warden.core.clock import Clock
from warden.core.ids import new_id
from warden.core.model import Operator, OperatorRole
from warden.core.ports import Store
from warden.errors import AuthenticationError, NotFoundError, PermissionDeniedError
from warden.service.auditing import Auditor

TOKEN_PREFIX = "wdn_op_"  # noqa: S105 - a public prefix, not a secret
ADMIN_TOKEN_FILE = "admin.token"  # noqa: S105 - a file name


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def acts_for(op: Operator, human: str) -> bool:
    """Whether ``op`` is the person ``human``: its linked ``--human`` account. Approvals (the
    owner level) and certification reviews resolve an agent's owner the same way."""
    return op.human is not None and op.human == human


class OperatorService:
    def __init__(self, store: Store, auditor: Auditor, clock: Clock) -> None:
        self._store = store
        self._audit = auditor
        self._clock = clock
        self._cache: dict[str, Operator] = {}

    def create(
        self, name: str, role: OperatorRole, actor: str, *, human: str | None = None
    ) -> tuple[Operator, str]:
        """A new operator and its bearer token (shown once). ``human`` links the account to
        the person behind it — how an agent's owner or an approver-group member approves."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        op = Operator(
            id=new_id("op"),
            name=name,
            role=role,
            token_hash=hash_token(token),
            created_at=self._clock.now(),
            human=human,
        )
        self._store.create_operator(op)
        self._audit.record(
            "operator.created",
            actor,
            {"operator": op.id, "name": name, "role": role.value, "human": human},
        )
        return op, token

    def bootstrap(self, data_dir: Path) -> Path | None:
        """Create the first admin if there is none; return the token file written, if any."""
        if self._store.list_operators():
            return None
        _, token = self.create("bootstrap-admin", OperatorRole.ADMIN, "warden")
        data_dir.mkdir(parents=True, exist_ok=True)
        path = data_dir / ADMIN_TOKEN_FILE
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(token + "\n")
        return path

    def authenticate(self, token: str | None) -> Operator:
        if not token:
            raise AuthenticationError("an operator token is required")
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            raise AuthenticationError("invalid operator token")
        digest = hash_token(token)
        op = self._cache.get(digest)
        if op is None:
            try:
                op = self._store.fetch_operator_by_token_hash(digest)
            except NotFoundError:
                raise AuthenticationError("invalid operator token") from None
            if not hmac.compare_digest(op.token_hash, digest):
                raise AuthenticationError("invalid operator token")
            self._cache[digest] = op
        if op.disabled:
            raise AuthenticationError("operator is disabled")
        return op

    @staticmethod
    def require(op: Operator, *roles: OperatorRole) -> None:
        if op.role is OperatorRole.ADMIN or op.role in roles:
            return
        raise PermissionDeniedError(f"operator role `{op.role.value}` may not do this")
