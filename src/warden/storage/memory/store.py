"""``MemoryStore``: the in-memory aggregates composed over one lock."""

from __future__ import annotations

import threading

from warden.storage.memory.approvals import ApprovalMemory
from warden.storage.memory.behaviour import BehaviourMemory
from warden.storage.memory.operators import OperatorMemory

__all__ = ["MemoryStore"]


class MemoryStore(ApprovalMemory, BehaviourMemory, OperatorMemory):
    """``ApprovalStore``, ``BehaviourStore``, ``ModeStore``, ``OperatorStore``, ``ProofStore``."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.RLock()  # one lock for every aggregate: a method is atomic

    def migrate(self) -> None:
        """Nothing to migrate: the schema is the Python types."""

    def close(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return "MemoryStore()"
