"""Registration entries: which workload identities may act as which agent.

An entry is a set of selectors for one agent (``core.selectors``); an identity matches it when it
carries every selector of the entry. Resolution (``EntryService.resolve``), in order:

1. an identity *bound* to an agent (a join token, a JWT-SVID Warden issued on its workload
   socket) resolves to that agent;
2. otherwise every entry whose selectors all match is a candidate, and so is the agent whose
   registered SPIFFE ID equals the identity's (an implicit ``spiffe:id:<its SPIFFE ID>`` entry,
   so an agent registered with a SPIFFE ID needs no entry: docs/adr/0030);
3. candidates of two or more agents → ``ambiguous_identity``; none → ``unknown_agent``; else
   the agent, with its most specific matching entry (most selectors, then lowest id).

Entries are read from the store on every resolution (token exchange is not the decision hot
path), so an entry removed on one replica stops matching everywhere at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from warden.attestation.base import WorkloadIdentity, attestation_error
from warden.attestation.spiffe_id import validate_spiffe_id
from warden.core.clock import Clock
from warden.core.ids import new_id, validate_agent_name
from warden.core.model import Agent, RegistrationEntry
from warden.core.ports import Store
from warden.core.selectors import matches, normalize_entry_selectors
from warden.errors import InvalidParameterError, NotFoundError
from warden.service.auditing import Auditor
from warden.service.state import HotState

IMPLICIT_SPIFFE_ENTRY = "implicit:spiffe-id"
MAX_DESCRIPTION = 500


@dataclass(frozen=True, slots=True)
class Resolution:
    agent: Agent
    entry: RegistrationEntry


class EntryService:
    def __init__(self, store: Store, state: HotState, auditor: Auditor, clock: Clock) -> None:
        self._store = store
        self._state = state
        self._audit = auditor
        self._clock = clock

    # -- management ---------------------------------------------------------------------------
    def add(self, agent_name: str, body: dict[str, Any], actor: str) -> RegistrationEntry:
        agent = self._store.fetch_agent(validate_agent_name(agent_name))
        raw = body.get("selectors")
        if not isinstance(raw, list):
            raise InvalidParameterError(
                "`selectors` must be a list of strings", detail={"field": "selectors"}
            )
        selectors = normalize_entry_selectors(raw)
        for selector in selectors:
            if selector.startswith("spiffe:id:"):
                validate_spiffe_id(selector[len("spiffe:id:") :])
        description = body.get("description", "")
        if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
            raise InvalidParameterError(
                f"`description` must be a string of at most {MAX_DESCRIPTION} characters"
            )
        unknown = set(body) - {"selectors", "description"}
        if unknown:
            raise InvalidParameterError(f"unknown field `{sorted(unknown)[0]}`")
        entry = RegistrationEntry(
            id=new_id("ent"),
            agent_name=agent.name,
            selectors=selectors,
            created_at=self._clock.now(),
            created_by=actor,
            description=description.strip(),
        )
        self._store.create_entry(entry)
        self._audit.record(
            "agent.entry_added",
            actor,
            {"entry": entry.id, "selectors": list(entry.selectors)},
            agent=agent.name,
        )
        return entry

    def list(self, agent_name: str) -> list[RegistrationEntry]:
        agent = self._store.fetch_agent(validate_agent_name(agent_name))
        return self._store.list_entries(agent=agent.name)

    def remove(self, agent_name: str, entry_id: str, actor: str) -> RegistrationEntry:
        entry = self._store.fetch_entry(entry_id)
        if entry.agent_name != agent_name:
            raise NotFoundError(f"agent `{agent_name}` has no entry `{entry_id}`")
        self._store.delete_entry(entry_id)
        self._audit.record(
            "agent.entry_removed",
            actor,
            {"entry": entry.id, "selectors": list(entry.selectors)},
            agent=agent_name,
        )
        return entry

    # -- resolution ---------------------------------------------------------------------------
    def resolve(self, identity: WorkloadIdentity) -> Resolution:
        """The one agent this identity may act as, or AttestationError (see the module doc)."""
        if identity.agent is not None:
            agent = self._agent(identity.agent)
            if agent is None:
                raise attestation_error(
                    "unknown_agent", f"agent `{identity.agent}` is not registered"
                )
            bound = RegistrationEntry(
                id=f"bound:{identity.method}",
                agent_name=agent.name,
                selectors=tuple(sorted(identity.selectors)),
            )
            return Resolution(agent, bound)
        candidates: dict[str, list[RegistrationEntry]] = {}
        for entry in self._store.list_entries():
            if matches(entry.selectors, identity.selectors):
                candidates.setdefault(entry.agent_name, []).append(entry)
        if identity.spiffe_id:
            owner = self._state.agents_by_spiffe.get(identity.spiffe_id)
            if owner is None:
                try:
                    owner = self._store.fetch_agent_by_spiffe_id(identity.spiffe_id)
                except NotFoundError:
                    owner = None
            if owner is not None:
                implicit = RegistrationEntry(
                    id=IMPLICIT_SPIFFE_ENTRY,
                    agent_name=owner.name,
                    selectors=(f"spiffe:id:{identity.spiffe_id}",),
                )
                candidates.setdefault(owner.name, []).append(implicit)
        if len(candidates) > 1:
            names = sorted(candidates)
            raise attestation_error(
                "ambiguous_identity",
                f"the workload identity matches entries of {len(names)} agents: "
                + ", ".join(f"`{n}`" for n in names[:5]),
                agents=names[:20],
            )
        if not candidates:
            raise attestation_error(
                "unknown_agent", "no agent is registered for this workload identity"
            )
        ((name, entries),) = candidates.items()
        agent = self._agent(name)
        if agent is None:  # deleted between the two reads: fail closed
            raise attestation_error("unknown_agent", f"agent `{name}` is not registered")
        best = sorted(entries, key=lambda e: (-len(e.selectors), e.id))[0]
        return Resolution(agent, best)

    def _agent(self, name: str) -> Agent | None:
        try:
            return self._store.fetch_agent(name)
        except NotFoundError:
            return None


def entry_view(entry: RegistrationEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "agent": entry.agent_name,
        "selectors": list(entry.selectors),
        "description": entry.description,
        "created_at": entry.created_at,
        "created_by": entry.created_by,
    }
