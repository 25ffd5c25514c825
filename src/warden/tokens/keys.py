"""Signing keys for task credentials (Ed25519, ``alg: EdDSA``).

A ``KeyManager`` holds an ordered key ring: it signs with the newest key and verifies with any
key it still holds, so rotation never breaks credentials already in flight. Every key's ``kid``
is its RFC 7638 JWK thumbprint, which makes ids stable across processes and restarts.

Implementations:

* ``MemoryKeyManager`` — keys live only in the process (tests, the embedded PDP).
* ``DiskKeyManager`` — keys are PKCS#8 PEM files in one directory (mode 0700), each file mode
  0600 and named ``<generation>_<created_at_ms>_<kid>.pem``; the highest generation is the
  newest. The directory is read at start (refusing group/other-readable key files) and a key is
  generated on first start. Other replicas' new keys are picked up with ``reload()``.

The server itself keeps its keys in the database, sealed (``tokens.sealed.SealedKeyManager``),
so that every replica shares one ring; retiring keys is ``service.keys.KeyService``.

Readers never take a lock: the ring is replaced as a whole (copy on write) under a writer lock.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from warden.core.clock import Clock
from warden.errors import InvalidParameterError
from warden.tokens import _jose

__all__ = ["DiskKeyManager", "KeyManager", "MemoryKeyManager", "SigningKey", "kid_for"]

ALGORITHM = "EdDSA"


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One Ed25519 signing key. ``kid`` is the RFC 7638 thumbprint of its public key."""

    kid: str
    private_key: Ed25519PrivateKey = field(repr=False)
    created_at: float

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    def public_jwk(self) -> dict[str, str]:
        """The published form: RFC 8037 OKP key with ``kid``, ``alg`` and ``use``."""
        return {
            **_jose.ed25519_public_jwk(self.private_key.public_key()),
            "kid": self.kid,
            "alg": ALGORITHM,
            "use": "sig",
        }


class KeyManager(Protocol):
    """Signing keys for task credentials: sign with the newest, verify with any held key."""

    def current(self) -> SigningKey:
        """The newest key: the one to sign with."""
        ...

    def public_key(self, kid: str) -> Ed25519PublicKey | None:
        """The public key with this ``kid``, or None. Called on every fresh verification."""
        ...

    def jwks(self) -> dict[str, Any]:
        """RFC 7517 JWK Set of every held public key (``GET /.well-known/jwks.json``)."""
        ...

    def rotate(self) -> SigningKey:
        """Generate a new key, make it the newest, and return it."""
        ...


def kid_for(public_key: Ed25519PublicKey) -> str:
    """The key id Warden uses: the RFC 7638 thumbprint of the public JWK."""
    return _jose.jwk_thumbprint(_jose.ed25519_public_jwk(public_key))


class _KeyRing:
    """The shared read side: an immutable snapshot replaced as a whole on every change."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: tuple[SigningKey, ...] = ()
        self._public: dict[str, Ed25519PublicKey] = {}
        self._jwks: tuple[dict[str, str], ...] = ()

    def _install(self, keys: Sequence[SigningKey]) -> None:
        """Publish ``keys`` (oldest first). Caller holds ``self._lock``."""
        if not keys:
            raise InvalidParameterError("a key manager needs at least one key")
        public = {key.kid: key.private_key.public_key() for key in keys}
        jwks = tuple(key.public_jwk() for key in reversed(keys))
        # Assignment order matters for lock-free readers: a kid is verifiable before it signs.
        self._public = public
        self._jwks = jwks
        self._keys = tuple(keys)

    def _new_key(self) -> SigningKey:
        private = Ed25519PrivateKey.generate()
        return SigningKey(
            kid=kid_for(private.public_key()), private_key=private, created_at=self._clock.now()
        )

    def current(self) -> SigningKey:
        return self._keys[-1]

    def keys(self) -> tuple[SigningKey, ...]:
        """Every held key, oldest first."""
        return self._keys

    def public_key(self, kid: str) -> Ed25519PublicKey | None:
        return self._public.get(kid)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [dict(jwk) for jwk in self._jwks]}


class MemoryKeyManager(_KeyRing):
    """Keys held only in memory; one key is generated at construction."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        with self._lock:
            self._install([self._new_key()])

    def rotate(self) -> SigningKey:
        with self._lock:
            key = self._new_key()
            self._install([*self._keys, key])
            return key


_KEY_FILE = re.compile(r"(?P<generation>\d{6,})_(?P<created>\d+)_(?P<kid>[A-Za-z0-9_-]{43})\.pem")


class DiskKeyManager(_KeyRing):
    """Keys as PKCS#8 PEM files (0600) in ``directory`` (0700); see the module docstring."""

    def __init__(self, directory: Path, clock: Clock) -> None:
        super().__init__(clock)
        self._directory = Path(directory)
        self._generations: dict[str, int] = {}
        if not self._directory.exists():
            self._directory.mkdir(mode=0o700, parents=True)
            os.chmod(self._directory, 0o700)
        with self._lock:
            loaded = self._read_all()
            if not loaded:
                loaded = [self._write(self._new_key(), generation=1)]
            self._install(loaded)

    @property
    def directory(self) -> Path:
        return self._directory

    def rotate(self) -> SigningKey:
        with self._lock:
            # Pick up keys other processes wrote, so the new generation really is the newest.
            keys = self._read_all()
            generation = max(self._generations.values(), default=0) + 1
            key = self._write(self._new_key(), generation=generation)
            self._install([*keys, key])
            return key

    def reload(self) -> None:
        """Re-read the directory (keys added by another replica become verifiable)."""
        with self._lock:
            keys = self._read_all()
            if keys:
                self._install(keys)

    # -- files ---------------------------------------------------------------------------------

    def _read_all(self) -> list[SigningKey]:
        found: list[tuple[int, SigningKey]] = []
        for path in sorted(self._directory.iterdir()):
            match = _KEY_FILE.fullmatch(path.name)
            if match is None:
                continue
            key = self._read(path, match["kid"], float(match["created"]) / 1000.0)
            found.append((int(match["generation"]), key))
        found.sort(key=lambda item: (item[0], item[1].created_at, item[1].kid))
        self._generations = {key.kid: generation for generation, key in found}
        return [key for _, key in found]

    @staticmethod
    def _read(path: Path, kid: str, created_at: float) -> SigningKey:
        if os.name == "posix" and stat.S_IMODE(path.stat().st_mode) & 0o077:
            raise InvalidParameterError(
                f"signing key file `{path}` is readable by group or others: chmod 600 it"
            )
        try:
            private = load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise InvalidParameterError(
                f"signing key file `{path}` is not a pkcs8 pem key"
            ) from exc
        if not isinstance(private, Ed25519PrivateKey):
            raise InvalidParameterError(f"signing key file `{path}` is not an ed25519 key")
        actual = kid_for(private.public_key())
        if actual != kid:
            raise InvalidParameterError(
                f"signing key file `{path}` does not hold the key its name says"
            )
        return SigningKey(kid=actual, private_key=private, created_at=created_at)

    def _write(self, key: SigningKey, *, generation: int) -> SigningKey:
        pem = key.private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        name = f"{generation:06d}_{round(key.created_at * 1000)}_{key.kid}.pem"
        final = self._directory / name
        temp = self._directory / f".{name}.{secrets.token_hex(4)}.tmp"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(pem)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temp, 0o600)
            os.replace(temp, final)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        self._generations[key.kid] = generation
        # created_at as stored (millisecond precision), so a reload sees the same key.
        return SigningKey(
            kid=key.kid, private_key=key.private_key, created_at=round(key.created_at * 1000) / 1000
        )
