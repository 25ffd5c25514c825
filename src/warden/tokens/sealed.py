"""Signing keys kept in the database, private halves sealed with a key-encryption key (KEK).

Every replica reads one key ring from the shared database, so a key rotated on one replica
signs and verifies on all of them after a ``reload()`` (the replication feed asks for one). The
private half of each key is sealed with AES-256-GCM under a KEK that is never in the database
(associated data: the key's ``kid``, so a sealed blob cannot be moved to another row); the public
half is stored as a JWK. A retired key loses its sealed private half for good.

The KEK comes from ``WARDEN_KEY_ENCRYPTION_KEY`` (base64url, 32 bytes) or a file (default
``<data dir>/keys/kek``, mode 0600, created on first start when the database has no keys yet).
Losing the KEK means losing the keys: every replica needs the same KEK, and a backup of the
database is only useful together with it (docs/lifecycle.md "Signing keys").
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from warden.core.clock import Clock
from warden.core.model import StoredKey
from warden.errors import ConflictError, InvalidParameterError, KeySealError, TokenInvalidError
from warden.tokens import _jose
from warden.tokens.keys import ALGORITHM, SigningKey, _KeyRing, kid_for

__all__ = ["KeyEncryptionKey", "KeyVault", "SealedKeyManager"]

KEK_BYTES = 32
_NONCE_BYTES = 12


class KeyVault(Protocol):
    """The part of the store the key manager needs."""

    def create_signing_key(self, key: StoredKey) -> None: ...

    def list_signing_keys(self) -> list[StoredKey]: ...

    def update_signing_key(self, key: StoredKey) -> None: ...


class KeyEncryptionKey:
    """AES-256-GCM over the raw private key bytes; the ``kid`` is the associated data."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEK_BYTES:
            raise InvalidParameterError("the key-encryption key must be 32 bytes")
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "KeyEncryptionKey(<secret>)"

    @classmethod
    def from_text(cls, text: str) -> KeyEncryptionKey:
        try:
            return cls(_jose.b64url_decode(text.strip()))
        except (TokenInvalidError, InvalidParameterError):
            raise InvalidParameterError(
                "the key-encryption key must be 32 bytes, base64url without padding"
            ) from None

    @classmethod
    def load(cls, path: Path, *, create: bool) -> KeyEncryptionKey:
        """Read the KEK file; with ``create`` write a new one (0600) when there is none."""
        path = Path(path)
        if not path.exists():
            if not create:
                raise KeySealError(
                    f"the key-encryption key `{path}` is missing and the database holds sealed "
                    "signing keys: restore it, or set WARDEN_KEY_ENCRYPTION_KEY"
                )
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            text = _jose.b64url_encode(secrets.token_bytes(KEK_BYTES))
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(text + "\n")
            return cls.from_text(text)
        if os.name == "posix" and path.stat().st_mode & 0o077:
            raise InvalidParameterError(
                f"key-encryption key file `{path}` is readable by group or others: chmod 600 it"
            )
        return cls.from_text(path.read_text())

    def seal(self, kid: str, secret: bytes) -> str:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return _jose.b64url_encode(nonce + self._aead.encrypt(nonce, secret, kid.encode()))

    def unseal(self, kid: str, sealed: str) -> bytes:
        try:
            blob = _jose.b64url_decode(sealed)
            return self._aead.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], kid.encode("utf-8"))
        except (InvalidTag, TokenInvalidError, ValueError):
            raise KeySealError(
                f"cannot unseal signing key `{kid}`: wrong key-encryption key, or the row was "
                "altered"
            ) from None


class SealedKeyManager(_KeyRing):
    """A ``KeyManager`` over the database; see the module docstring."""

    def __init__(self, vault: KeyVault, kek: KeyEncryptionKey, clock: Clock) -> None:
        super().__init__(clock)
        self._vault = vault
        self._kek = kek
        self._records: tuple[StoredKey, ...] = ()
        with self._lock:
            if not self._live(vault.list_signing_keys()):
                self._add_newest(previous=None)
            self._load()

    @staticmethod
    def _live(records: list[StoredKey]) -> list[StoredKey]:
        return [r for r in records if r.retired_at is None and r.sealed_private is not None]

    def records(self) -> tuple[StoredKey, ...]:
        """Every key the database holds (retired ones too), oldest generation first."""
        return self._records

    def reload(self) -> None:
        """Re-read the ring (a key rotated or retired by another replica)."""
        with self._lock:
            self._load()

    def rotate(self) -> SigningKey:
        """A new newest key; the previous newest keeps verifying until it is retired."""
        with self._lock:
            records = self._vault.list_signing_keys()
            live = self._live(records)
            self._add_newest(previous=live[-1] if live else None, records=records)
            self._load()
            return self.current()

    def retire(self, kid: str, *, now: float) -> StoredKey:
        """Destroy a superseded key's private half and drop it from the JWKS."""
        with self._lock:
            record = next((r for r in self._vault.list_signing_keys() if r.kid == kid), None)
            if record is None:
                raise InvalidParameterError(f"unknown signing key `{kid}`")
            if record.superseded_at is None:
                raise ConflictError("the newest signing key cannot be retired: rotate first")
            retired = replace(record, sealed_private=None, retired_at=record.retired_at or now)
            self._vault.update_signing_key(retired)
            self._load()
            return retired

    # -- internals (caller holds the lock) ------------------------------------------------------

    def _add_newest(
        self, *, previous: StoredKey | None, records: list[StoredKey] | None = None
    ) -> None:
        records = self._vault.list_signing_keys() if records is None else records
        now = self._clock.now()
        private = Ed25519PrivateKey.generate()
        kid = kid_for(private.public_key())
        raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        generation = max((r.generation for r in records), default=0) + 1
        record = StoredKey(
            kid=kid,
            generation=generation,
            algorithm=ALGORITHM,
            public_jwk=_jose.ed25519_public_jwk(private.public_key()),
            sealed_private=self._kek.seal(kid, raw),
            created_at=now,
        )
        try:
            self._vault.create_signing_key(record)
        except ConflictError:
            # another replica added this generation at the same moment: use theirs
            return
        if previous is not None and previous.superseded_at is None:
            self._vault.update_signing_key(replace(previous, superseded_at=now))

    def _load(self) -> None:
        records = self._vault.list_signing_keys()
        keys = []
        for record in self._live(records):
            assert record.sealed_private is not None
            raw = self._kek.unseal(record.kid, record.sealed_private)
            private = Ed25519PrivateKey.from_private_bytes(raw)
            if kid_for(private.public_key()) != record.kid:
                raise KeySealError(f"signing key `{record.kid}` does not hold the key it names")
            keys.append(
                SigningKey(kid=record.kid, private_key=private, created_at=record.created_at)
            )
        self._install(keys)
        self._records = tuple(records)


def historical_jwks(records: Iterable[StoredKey]) -> dict[str, Any]:
    """A JWK Set of every public key Warden ever signed with, retired ones included.

    The published JWKS drops retired keys (nothing live they signed remains), but evidence signed
    long ago — audit checkpoints — must stay verifiable: verifiers of history use this set.
    """
    return {
        "keys": [{**r.public_jwk, "kid": r.kid, "alg": r.algorithm, "use": "sig"} for r in records]
    }
