"""Keep a task credential fresh: renew it before it expires, while its task lives.

keeper = CredentialKeeper(client, client.exchange(svid, scope=..., purpose=...))
token = keeper.token()   # renewed first when inside the last fifth of its lifetime
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

from warden.errors import TaskNotActiveError

from ._wire import TaskCredential
from .client import AsyncWardenClient, WardenClient

__all__ = ["AsyncCredentialKeeper", "CredentialKeeper"]


class CredentialKeeper:
    """Holds the current credential; ``token()`` renews it when due (thread-safe)."""

    def __init__(
        self,
        client: WardenClient,
        credential: TaskCredential,
        *,
        margin: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._credential = credential
        self._margin = margin
        self._clock = clock
        self._lock = threading.Lock()
        self._dropped = False

    @property
    def credential(self) -> TaskCredential:
        return self._credential

    def drop(self) -> None:
        """Forget the credential: its task ended (a Shared Signals ``session-revoked``)."""
        self._dropped = True

    def token(self) -> str:
        if self._dropped:
            raise TaskNotActiveError("the task's session was revoked: its credential was dropped")
        with self._lock:
            if self._credential.renew_due(self._clock(), margin=self._margin):
                self._credential = self._client.renew(self._credential)
            return self._credential.token


class AsyncCredentialKeeper:
    """The asyncio twin of ``CredentialKeeper``."""

    def __init__(
        self,
        client: AsyncWardenClient,
        credential: TaskCredential,
        *,
        margin: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._credential = credential
        self._margin = margin
        self._clock = clock
        self._lock = asyncio.Lock()

    @property
    def credential(self) -> TaskCredential:
        return self._credential

    async def token(self) -> str:
        async with self._lock:
            if self._credential.renew_due(self._clock(), margin=self._margin):
                self._credential = await self._client.renew(self._credential)
            return self._credential.token
