"""Operators: the people and machines that call the admin API with a bearer token."""

from __future__ import annotations

from typing import Protocol

from warden.core.model import Operator

__all__ = ["OperatorStore"]


class OperatorStore(Protocol):
    """Operators, unique by id and by token hash."""

    def create_operator(self, operator: Operator) -> None: ...

    def fetch_operator_by_token_hash(self, token_hash: str) -> Operator: ...

    def update_operator(self, operator: Operator) -> None: ...

    def list_operators(self) -> list[Operator]: ...
