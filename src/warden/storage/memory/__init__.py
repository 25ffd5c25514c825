"""In-memory implementations of the storage ports (ADR 0150): no SQL, one process, one lock.

``MemoryStore`` implements, so far, ``ApprovalStore``, ``BehaviourStore``, ``ModeStore``,
``OperatorStore`` and ``ProofStore`` with the SQL store's semantics (the same domain errors, the
same ordering and paging, conditional updates atomic under the store's lock); the conformance
suites in ``tests/conformance/storage`` run each of those ports against memory, SQLite and
PostgreSQL.
"""

from __future__ import annotations

from warden.storage.memory.store import MemoryStore

__all__ = ["MemoryStore"]
