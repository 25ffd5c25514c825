"""Distributed policies (ADR 0120): published bundles and the active pointer."""

from __future__ import annotations

from typing import Protocol

from warden.core.model import PolicyPointer

__all__ = ["PolicyStore"]


class PolicyStore(Protocol):
    """Policy bundles by revision, and which revision is active."""

    def publish_policies(
        self, revision: str, files: dict[str, str], *, at: float, by: str
    ) -> PolicyPointer:
        """Store the bundle (once per revision) and make it active, atomically."""
        ...

    def active_policies(self) -> PolicyPointer | None: ...

    def policy_bundle(self, revision: str) -> dict[str, str]:
        """The files of a published revision; NotFoundError if unknown."""
        ...
