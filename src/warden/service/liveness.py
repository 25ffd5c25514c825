"""Liveness: is a verified task credential's task and agent still live, as this replica sees it.

A credential whose signature and claims check out (``service.credentials``) is only good while
its jti is not revoked, its task is active and unexpired, and its agent is active and is the
task's agent. ``Liveness.check`` answers that from the replica's hot state
(``service.state.HotState``); what the replica does not know (a task started, or an agent
registered, on another replica) is read from the database once, and what it knows to be ended
or inactive is refused without I/O. The decision path, introspection, renewal and delegation
all ask here.
"""

from __future__ import annotations

from dataclasses import dataclass

from warden.core.clock import Clock
from warden.core.model import Agent, AgentStatus
from warden.core.ports import Store
from warden.errors import NotFoundError, TokenInvalidError, TokenRevokedError
from warden.service.state import HotState, LiveTask
from warden.tokens.verifier import VerifiedCredential


@dataclass(frozen=True, slots=True)
class Live:
    """A credential checked against live state: its task and agent, as the decision path sees."""

    task: LiveTask
    agent: Agent


class Liveness:
    def __init__(self, store: Store, state: HotState, clock: Clock) -> None:
        self._store = store
        self._state = state
        self._clock = clock

    def check(self, cred: VerifiedCredential) -> Live:
        """Revocation, task active and unexpired, agent active — or TokenRevokedError.

        What this replica does not know (a task started, or an agent registered, on another
        replica) is read from the database once; what it knows to be ended or inactive is
        refused without I/O.
        """
        if cred.jti in self._state.revoked:
            raise _revoked("credential revoked")
        task = self._state.tasks.get(cred.task_id)
        if task is None:
            task = self._learn_task(cred)
            if task is None:
                raise _revoked("task is not active")
        if task.expires_at <= self._clock.now():
            raise _revoked("task expired")
        agent = self._state.agents_by_spiffe.get(cred.subject)
        if agent is None:
            agent = self._learn_agent(cred.subject)
        if agent is None or agent.status is not AgentStatus.ACTIVE:
            raise _revoked("agent is not active")
        if task.spiffe_id != cred.subject:
            raise _revoked("credential subject is not the task's agent")
        return Live(task, agent)

    def active_agent(self, spiffe_id: str) -> Agent | None:
        """The agent of ``spiffe_id`` when this replica knows it as active, else None."""
        return self._state.agent_is_active(spiffe_id)

    def _learn_task(self, cred: VerifiedCredential) -> LiveTask | None:
        if cred.task_id in self._state.ended:
            return None
        try:
            stored = self._store.fetch_task(cred.task_id)
            recorded = self._store.fetch_credential(cred.jti)
        except NotFoundError:
            return None
        if recorded.revoked_at is not None:
            self._state.revoke(recorded.jti, recorded.expires_at, announce=False)
            return None
        self._state.put_task(stored)
        return self._state.tasks.get(stored.id)

    def _learn_agent(self, spiffe_id: str) -> Agent | None:
        try:
            agent = self._store.fetch_agent_by_spiffe_id(spiffe_id)
        except NotFoundError:
            return None
        self._state.put_agent(agent, announce=False)
        return agent


def _revoked(message: str) -> TokenInvalidError:
    return TokenRevokedError(message)
