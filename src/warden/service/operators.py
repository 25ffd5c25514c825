"""Operators (humans using the management API, and ``pep`` accounts) and their bearer tokens.

Tokens are 256-bit random strings shown once; only their SHA-256 is stored (a fast hash is right
for high-entropy tokens — argon2 is for passwords people choose). On first start the server
creates a bootstrap admin and writes its token to ``<data dir>/admin.token`` (mode 0600).

Tokens expire (``tokens.operator_ttl``, 30 days by default), can be rotated (a new token, the old
one refused at once) and an operator can be disabled (every later call refused). Changes are
committed first, then announced on the change feed (``operator.changed``): every replica drops
what it had cached. The cache is also bounded in age (``CACHE_TTL``), so a lost notification
costs at most that long — there is no process-lifetime cache of who may call.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from warden.core.clock import Clock
from warden.core.ids import new_id
from warden.core.model import Operator, OperatorRole
from warden.core.ports import OperatorStore
from warden.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    StorageError,
)
from warden.service.auditing import Auditor

TOKEN_PREFIX = "wdn_op_"  # noqa: S105 - a public prefix, not a secret
ADMIN_TOKEN_FILE = "admin.token"  # noqa: S105 - a file name
DEFAULT_TOKEN_TTL = 30 * 86400.0
CACHE_TTL = 5.0  # seconds a replica trusts what it read about an operator
BOOTSTRAP_ADMIN = "bootstrap-admin"
CHANGED = "operator.changed"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def acts_for(op: Operator, human: str) -> bool:
    """Whether ``op`` is the person ``human``: its linked ``--human`` account. Approvals (the
    owner level) and certification reviews resolve an agent's owner the same way."""
    return op.human is not None and op.human == human


class OperatorService:
    def __init__(
        self,
        store: OperatorStore,
        auditor: Auditor,
        clock: Clock,
        *,
        token_ttl: float = DEFAULT_TOKEN_TTL,
        announce: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        self._store = store
        self._audit = auditor
        self._clock = clock
        self._ttl = token_ttl
        self._cache: dict[str, tuple[Operator, float]] = {}  # token hash -> (operator, read at)
        self._generation = 0  # bumped on every invalidation: a read racing one is not cached
        self._lock = threading.Lock()
        # tells the other replicas (the root passes replication's announcer; None: a lone process)
        self.announce: Callable[[str, dict[str, Any]], None] = announce or (lambda kind, data: None)

    # -- accounts -----------------------------------------------------------------------------
    def create(
        self, name: str, role: OperatorRole, actor: str, *, human: str | None = None
    ) -> tuple[Operator, str]:
        """A new operator and its bearer token (shown once). ``human`` links the account to
        the person behind it — how an agent's owner or an approver-group member approves."""
        if any(o.name == name for o in self._store.list_operators()):
            raise ConflictError(f"an operator named `{name}` already exists")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self._clock.now()
        op = Operator(
            id=new_id("op"),
            name=name,
            role=role,
            token_hash=hash_token(token),
            created_at=now,
            human=human,
            expires_at=now + self._ttl,
        )
        self._store.create_operator(op)
        self._audit.record(
            "operator.created",
            actor,
            {
                "operator": op.id,
                "name": name,
                "role": role.value,
                "human": human,
                "expires_at": op.expires_at,
            },
        )
        return op, token

    def bootstrap(self, data_dir: Path) -> Path | None:
        """Create the first admin if there is none, or give the bootstrap admin a fresh token
        when no admin can sign in any more (all expired or disabled) — whoever can read the data
        directory can already do anything; return the token file written, if any."""
        ops = self._store.list_operators()
        now = self._clock.now()
        if not ops:
            _, token = self.create(BOOTSTRAP_ADMIN, OperatorRole.ADMIN, "warden")
        elif any(o.role is OperatorRole.ADMIN and self._usable(o, now) for o in ops):
            return None
        else:
            boot = next((o for o in ops if o.name == BOOTSTRAP_ADMIN), None)
            if boot is None:
                return None
            _, token = self._reissue(replace(boot, disabled=False), "warden", "bootstrap")
        data_dir.mkdir(parents=True, exist_ok=True)
        path = data_dir / ADMIN_TOKEN_FILE
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(token + "\n")
        return path

    def get(self, name: str) -> Operator:
        found = [o for o in self._store.list_operators() if o.name == name]
        if not found:
            raise NotFoundError(f"operator `{name[:100]}` not found")
        return found[0]

    def disable(self, name: str, actor: str, reason: str = "") -> Operator:
        """Refuse every later call of ``name``, on every replica (within ``CACHE_TTL`` even if
        the change notification is lost)."""
        op = self.get(name)
        if op.disabled:
            raise ConflictError(f"operator `{name}` is already disabled")
        if op.role is OperatorRole.ADMIN and not any(
            o.id != op.id and o.role is OperatorRole.ADMIN and self._usable(o, self._clock.now())
            for o in self._store.list_operators()
        ):
            raise ConflictError(f"`{name}` is the last admin who can sign in: create another first")
        disabled = replace(op, disabled=True)
        self._store.update_operator(disabled)
        self._changed(disabled)
        self._audit.record(
            "operator.disabled",
            actor,
            {"operator": op.id, "name": name, "role": op.role.value, "reason": reason},
        )
        return disabled

    def rotate(self, name: str, actor: str) -> tuple[Operator, str]:
        """A new token (and expiry) for ``name``; the old token is refused from now on."""
        op = self.get(name)
        if op.disabled:
            raise ConflictError(f"operator `{name}` is disabled")
        return self._reissue(op, actor, "rotated")

    def _reissue(self, op: Operator, actor: str, why: str) -> tuple[Operator, str]:
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        rotated = replace(
            op, token_hash=hash_token(token), expires_at=self._clock.now() + self._ttl
        )
        self._store.update_operator(rotated)
        self._changed(rotated)
        self._audit.record(
            "operator.rotated",
            actor,
            {"operator": op.id, "name": op.name, "reason": why, "expires_at": rotated.expires_at},
        )
        return rotated, token

    # -- authentication -----------------------------------------------------------------------
    def authenticate(self, token: str | None) -> Operator:
        if not token:
            raise AuthenticationError("an operator token is required", detail={"reason": "missing"})
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            raise AuthenticationError(
                "invalid operator token", detail={"reason": "not_an_operator_token"}
            )
        digest = hash_token(token)
        now = self._clock.now()
        cached = self._cache.get(digest)
        if cached is not None and now - cached[1] < CACHE_TTL:
            op = cached[0]
        else:
            generation = self._generation
            try:
                op = self._store.fetch_operator_by_token_hash(digest)
            except NotFoundError:
                raise AuthenticationError(
                    "invalid operator token", detail={"reason": "unknown"}
                ) from None
            except StorageError:
                if cached is None:
                    raise
                # the database is down: what was last read (no change to this operator was
                # announced since), so an operator can still revoke during an outage (ADR 0093)
                op = cached[0]
            if not hmac.compare_digest(op.token_hash, digest):
                raise AuthenticationError("invalid operator token", detail={"reason": "unknown"})
            with self._lock:
                if generation == self._generation:
                    self._cache[digest] = (op, now)
        if op.disabled:
            raise AuthenticationError("operator is disabled", detail={"reason": "disabled"})
        if op.expires_at is not None and op.expires_at <= now:
            raise AuthenticationError(
                "operator token has expired: rotate it (warden operators rotate NAME)",
                detail={"reason": "expired"},
            )
        return op

    @staticmethod
    def require(op: Operator, *roles: OperatorRole) -> None:
        if op.role is OperatorRole.ADMIN or op.role in roles:
            return
        raise PermissionDeniedError(
            f"operator role `{op.role.value}` may not do this", detail={"reason": "wrong_role"}
        )

    # -- replication --------------------------------------------------------------------------
    def forget(self, change: dict[str, Any] | None = None) -> None:
        """Every cached operator is read again on its next use (a peer changed one, or the hot
        state resynced). The changed one is dropped; the others are kept only as the last known
        answer while the database is down (ADR 0093)."""
        changed = (change or {}).get("operator")
        with self._lock:
            self._generation += 1
            self._cache = {k: (op, 0.0) for k, (op, _) in self._cache.items() if op.id != changed}

    def _changed(self, op: Operator) -> None:
        self.forget({"operator": op.id})
        self.announce(CHANGED, {"operator": op.id})

    @staticmethod
    def _usable(op: Operator, now: float) -> bool:
        return not op.disabled and (op.expires_at is None or op.expires_at > now)
