"""``OperatorStore`` and ``ProofStore`` in memory."""

from __future__ import annotations

from warden.core.model import Operator
from warden.errors import ConflictError, NotFoundError
from warden.storage.memory._base import MemoryBase, stored


class OperatorMemory(MemoryBase):
    def __init__(self) -> None:
        super().__init__()
        self._operators: dict[str, Operator] = {}
        self._proofs: dict[str, float] = {}

    # -- operators ---------------------------------------------------------------------
    def create_operator(self, operator: Operator) -> None:
        with self._lock:
            if operator.id in self._operators:
                raise ConflictError(f"operator `{operator.id}` already exists")
            if any(o.token_hash == operator.token_hash for o in self._operators.values()):
                raise ConflictError(f"another operator already uses the token of `{operator.id}`")
            self._operators[operator.id] = stored(operator)

    def fetch_operator_by_token_hash(self, token_hash: str) -> Operator:
        with self._lock:
            for o in self._operators.values():
                if o.token_hash == token_hash:
                    return o
        raise NotFoundError("no operator has this token")  # never echo the hash

    def update_operator(self, operator: Operator) -> None:
        with self._lock:
            if operator.id not in self._operators:
                raise NotFoundError(f"operator `{operator.id}` not found")
            if any(
                o.token_hash == operator.token_hash and o.id != operator.id
                for o in self._operators.values()
            ):
                raise ConflictError(f"another operator already uses the token of `{operator.id}`")
            self._operators[operator.id] = stored(operator)

    def list_operators(self) -> list[Operator]:
        with self._lock:
            return sorted(self._operators.values(), key=lambda o: (o.name, o.id))

    # -- DPoP proof replay -------------------------------------------------------------
    def remember_proof(self, key: str, *, expires_at: float, now: float) -> bool:
        with self._lock:
            held = self._proofs.get(key)
            if held is not None and held > float(now):
                return False  # a live entry: a replay
            self._proofs[key] = float(expires_at)
            return True

    def prune_proofs(self, *, now: float) -> int:
        with self._lock:
            gone = [k for k, exp in self._proofs.items() if exp <= now]
            for k in gone:
                del self._proofs[k]
            return len(gone)
