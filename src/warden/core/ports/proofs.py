"""DPoP proof replay: the keys of proofs already seen, shared by every replica."""

from __future__ import annotations

from typing import Protocol

__all__ = ["ProofStore"]


class ProofStore(Protocol):
    """Used DPoP proofs (``warden.tokens.dpop.ProofLedger`` is the one-method view of it)."""

    def remember_proof(self, key: str, *, expires_at: float, now: float) -> bool:
        """Record a proof key (a hash of key thumbprint and ``jti``) until ``expires_at``.

        True the first time; False when the key is already recorded and not yet expired (a
        replay). Atomic across processes: of two concurrent calls with one key, one wins.
        """
        ...

    def prune_proofs(self, *, now: float) -> int:
        """Forget expired proof keys; returns how many were removed."""
        ...
