"""Warden's Python SDK: clients (with leases), an embedded PDP, and a guard for tool functions.

    from warden.sdk import WardenClient, CredentialKeeper, guard

The SDK is the client side: it imports no server package (``pyproject.toml``'s contracts,
ADR 0153). The embedded PDP is server code (``warden.embedded``); ``EmbeddedPDP`` here and
``warden.sdk.embedded`` re-export it, imported on first use, since it brings the whole server
(storage, policy engine) with it.
"""

from __future__ import annotations

from typing import Any

from warden.errors import (
    AccessDeniedError,
    ApprovalRequiredError,
    DecisionUnavailableError,
    RemoteAPIError,
)

from ._wire import Decision, Lease, TaskCredential, tool_evaluation
from .client import AsyncWardenClient, WardenClient
from .credentials import AsyncCredentialKeeper, CredentialKeeper
from .guard import guard

__all__ = [
    "AccessDeniedError",
    "ApprovalRequiredError",
    "AsyncCredentialKeeper",
    "AsyncWardenClient",
    "CredentialKeeper",
    "Decision",
    "DecisionUnavailableError",
    "EmbeddedPDP",
    "Lease",
    "RemoteAPIError",
    "TaskCredential",
    "WardenClient",
    "guard",
    "tool_evaluation",
]


def __getattr__(name: str) -> Any:
    if name == "EmbeddedPDP":
        from .embedded import EmbeddedPDP

        return EmbeddedPDP
    raise AttributeError(name)
