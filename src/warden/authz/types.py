"""Value types of the authorization layer: what the PDP is asked and what it answers.

These are plain frozen records with no behaviour; the PDP (``pdp.py``) turns an
``AuthzRequest`` into a ``Decision``. A deny is a value, never an exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["AuthzRequest", "Decision", "EntityRef"]

_EMPTY: Mapping[str, Mapping[str, str]] = {}


@dataclass(frozen=True, slots=True)
class EntityRef:
    """A Cedar entity uid, ``{type}::"{id}"``. Always passed to Cedar in dict form."""

    type: str
    id: str

    def __str__(self) -> str:
        # Display only (logs, messages); never fed back to a parser.
        escaped = self.id.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.type}::"{escaped}"'


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthzRequest:
    """One Cedar authorization request, already assembled by the caller.

    ``context`` is the full Cedar context: it already holds ``action`` (the AuthZEN
    ``action.properties``) and the reserved ``warden`` record. The PDP neither adds nor
    strips keys. ``principal_attrs`` / ``resource_attrs`` are merged with the entity
    store (the store wins on conflict); ``principal_parents`` are added to the principal's
    parents for this request only.
    """

    principal: EntityRef
    principal_attrs: Mapping[str, Any] | None = None
    principal_parents: tuple[EntityRef, ...] = ()
    action: str
    resource: EntityRef
    resource_attrs: Mapping[str, Any] | None = None
    context: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Decision:
    """The PDP's answer to one request.

    ``reasons`` are the ids of the determining policies (the permits behind an allow, the
    forbids behind a deny; empty for a default deny). ``monitored`` lists monitor-mode
    forbids that matched (or errored) and would have denied had they been enforced.
    ``annotations`` holds the annotations of every policy in ``reasons`` and ``monitored``,
    by policy id (``@approval(...)`` is read from here).
    """

    allowed: bool
    reasons: tuple[str, ...]
    errors: tuple[str, ...]
    policy_revision: str
    monitored: tuple[str, ...] = ()
    annotations: Mapping[str, Mapping[str, str]] = field(default_factory=lambda: _EMPTY)
