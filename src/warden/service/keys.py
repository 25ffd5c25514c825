"""Signing key lifecycle: rotate, publish while needed, retire.

``rotate`` makes a new key the one that signs; the previous keys keep verifying (and stay in the
JWKS). ``retire_due`` (run by housekeeping on every replica) retires a superseded key once
nothing it signed can still be valid: at least ``grace`` seconds after it stopped signing (so
replicas that had not yet heard of the rotation are covered) and after the last expiry of
everything recorded as signed by it (task credentials and JWT leases). Retiring destroys the
sealed private half and drops the key from the JWKS. Every change is audited and announced to
the other replicas, which reload their key ring.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from warden.core.clock import Clock
from warden.core.model import StoredKey
from warden.core.ports import Store
from warden.service.auditing import Auditor
from warden.tokens.sealed import SealedKeyManager
from warden.tokens.verifier import TaskCredentialVerifier

LEEWAY = 5.0  # the verifier's clock leeway: a credential is accepted this long past exp


class KeyService:
    def __init__(
        self,
        store: Store,
        keys: SealedKeyManager,
        verifier: TaskCredentialVerifier,
        auditor: Auditor,
        clock: Clock,
        *,
        grace: float,
        announce: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        self._store = store
        self._keys = keys
        self._verifier = verifier
        self._audit = auditor
        self._clock = clock
        self._grace = grace
        self._announce = announce  # tells the other replicas (replication's announcer)

    def rotate(self, actor: str) -> StoredKey:
        previous = self._keys.current().kid
        key = self._keys.rotate()
        record = next(r for r in self._keys.records() if r.kid == key.kid)
        self._audit.record(
            "key.rotated",
            actor,
            {"kid": key.kid, "previous": previous, "generation": record.generation},
        )
        self._tell("keys.changed", {"kid": key.kid})
        return record

    def retire_due(self) -> list[str]:
        now = self._clock.now()
        retired = []
        for record in self._keys.records():
            if record.retired_at is not None or record.superseded_at is None:
                continue
            if now < record.superseded_at + self._grace:
                continue
            last = self._store.last_expiry_signed_by(record.kid)
            if last is not None and now < last + LEEWAY:
                continue
            self._keys.retire(record.kid, now=now)
            retired.append(record.kid)
            self._audit.record(
                "key.retired",
                "warden",
                {"kid": record.kid, "superseded_at": record.superseded_at, "last_expiry": last},
            )
        if retired:
            self._verifier.clear_cache()
            self._tell("keys.changed", {"retired": retired})
        return retired

    def reload(self) -> None:
        """Another replica rotated or retired a key."""
        before = {k.kid for k in self._keys.keys()}
        self._keys.reload()
        if before - {k.kid for k in self._keys.keys()}:
            self._verifier.clear_cache()

    def view(self) -> list[dict[str, Any]]:
        current = self._keys.current().kid
        now = self._clock.now()
        out = []
        for record in self._keys.records():
            status = (
                "retired"
                if record.retired_at is not None
                else "current"
                if record.kid == current
                else "published"
            )
            item: dict[str, Any] = {
                "kid": record.kid,
                "generation": record.generation,
                "algorithm": record.algorithm,
                "status": status,
                "created_at": record.created_at,
                "superseded_at": record.superseded_at,
                "retired_at": record.retired_at,
            }
            if status == "published" and record.superseded_at is not None:
                last = self._store.last_expiry_signed_by(record.kid)
                item["retires_after"] = max(
                    record.superseded_at + self._grace, (last or 0) + LEEWAY, now
                )
            out.append(item)
        return out

    def _tell(self, kind: str, data: dict[str, Any]) -> None:
        if self._announce is not None:
            self._announce(kind, data)
