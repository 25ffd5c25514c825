"""Signing keys: private halves sealed by the key manager, public halves published."""

from __future__ import annotations

from typing import Protocol

from warden.core.model import StoredKey

__all__ = ["KeyStore"]


class KeyStore(Protocol):
    """Sealed signing keys, and what each key signed (for safe retirement)."""

    def create_signing_key(self, key: StoredKey) -> None: ...

    def list_signing_keys(self) -> list[StoredKey]:
        """Every key, oldest generation first."""
        ...

    def update_signing_key(self, key: StoredKey) -> None: ...

    def last_expiry_signed_by(self, kid: str) -> float | None:
        """The latest expiry of anything recorded as signed by ``kid`` (credentials, leases)."""
        ...
