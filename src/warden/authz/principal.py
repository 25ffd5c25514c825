"""The verified principal as a type: what a PEP sends is either a plain request or an agent
request, and only Warden produces the entity types it owns (ADR 0080).

``classify`` is the one place that decides. ``subject.type == "agent"`` (exactly) is an
``AgentRequest``: the principal will be ``Agent::"<SPIFFE ID>"`` only once the task credential
in ``subject.properties.token`` verifies. Everything else is a ``PlainRequest`` and may not
name, anywhere a caller controls, an entity type Warden owns — ``Agent``, ``Task`` and the
inventory's ``Group`` — nor supply ``context.warden`` (server-derived facts). Those are
refused with ``reserved_entity_type``.

Look-alikes count: Cedar type names are case-sensitive, so ``AGENT`` is not ``Agent`` to Cedar,
but a policy author reading a log cannot tell ``Agent``, ``agent ``, ``\u0410gent`` (Cyrillic A) or
``Warden::Agent`` apart, and a policy written for one must never be satisfied by another. The
*skeleton* of a name (compatibility-decomposed, marks and separators dropped, case-folded,
common confusables mapped to Latin) is what is compared, for every ``::`` segment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from warden.core.names import RESERVED_TYPES, is_reserved_type, is_tool_type, skeleton
from warden.errors import InvalidParameterError, ReservedEntityTypeError

from .authzen import EvaluationInput

__all__ = [
    "AGENT_SUBJECT_TYPE",
    "MAX_DEPTH",
    "RESERVED_TYPES",
    "AgentRequest",
    "PlainRequest",
    "classify",
    "is_reserved_type",
    "is_tool_type",
    "skeleton",
]

AGENT_SUBJECT_TYPE = "agent"
RESERVED_CONTEXT_KEY = "warden"
MAX_DEPTH = 32  # nesting of any caller-supplied value: deeper is refused, never recursed into


@dataclass(frozen=True, slots=True)
class PlainRequest:
    """A request whose principal is exactly what the PEP named (no Warden-owned types)."""

    ev: EvaluationInput


@dataclass(frozen=True, slots=True)
class AgentRequest:
    """A request that will have an ``Agent::`` principal if, and only if, ``token`` verifies."""

    ev: EvaluationInput
    token: str | None
    proof: Any


def classify(ev: EvaluationInput) -> PlainRequest | AgentRequest:
    """Split a parsed evaluation into the two kinds of request, refusing reserved names.

    Raises ``ReservedEntityTypeError`` (a 400) for a Warden-owned type where a caller put it,
    and ``InvalidParameterError`` for values nested deeper than ``MAX_DEPTH``.
    """
    agent = ev.subject.type == AGENT_SUBJECT_TYPE
    if not agent:
        _no_reserved_type(ev.subject.type, "subject.type")
        _no_entity_refs(ev.subject.properties, "subject.properties", 0)
    _no_reserved_type(ev.resource.type, "resource.type")
    _no_entity_refs(ev.resource.properties, "resource.properties", 0)
    _no_entity_refs(ev.action.properties, "action.properties", 0)
    for key in ev.context or {}:
        if isinstance(key, str) and skeleton(key) == RESERVED_CONTEXT_KEY:
            raise ReservedEntityTypeError(
                f"`context.{key[:40]}` is reserved for facts Warden derives itself",
                detail={"field": f"context.{key[:40]}"},
            )
    _no_entity_refs(ev.context, "context", 0)
    if not agent:
        return PlainRequest(ev)
    props = ev.subject.properties or {}
    token = props.get("token")
    return AgentRequest(ev, token if isinstance(token, str) and token else None, props.get("dpop"))


def _no_reserved_type(name: str, where: str) -> None:
    if is_reserved_type(name):
        raise ReservedEntityTypeError(
            f"`{where}` `{name[:60]}` is a type only Warden may produce", detail={"field": where}
        )


def _no_entity_refs(value: Any, where: str, depth: int) -> None:
    """Walk a caller-supplied value: no Cedar entity reference to a reserved type, bounded."""
    if depth > MAX_DEPTH:
        raise InvalidParameterError(
            f"`{where}` is nested deeper than {MAX_DEPTH} levels", detail={"field": where}
        )
    if isinstance(value, Mapping):
        # the explicit escape, and the implicit ``{type, id}`` form a Cedar schema accepts
        ref = value.get("__entity")
        if isinstance(ref, Mapping) and isinstance(ref.get("type"), str):
            _no_reserved_type(ref["type"], f"{where}.__entity.type")
        elif value.keys() == {"type", "id"} and isinstance(value["type"], str):
            _no_reserved_type(value["type"], f"{where}.type")
        for item in value.values():
            if isinstance(item, Mapping | list):
                _no_entity_refs(item, where, depth + 1)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, Mapping | list):
                _no_entity_refs(item, where, depth + 1)
