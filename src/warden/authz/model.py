"""Warden's Cedar model: the entity types, actions and ``context.warden`` record the PDP uses.

This module is the single definition both sides read: ``schema.py`` renders it as a Cedar
schema (``warden policies schema``), and the decision path builds principals and
``context.warden`` with these names (tests hold the two together: a real agent decision is
checked against the rendered schema by Cedar itself, so a field added on one side only fails).

A tiny type algebra mirrors Cedar's: ``Prim`` (Long, String, Bool), ``SetOf``, ``Record`` of
``Attr`` (required or optional), ``Ref`` (a common type or an entity type by name).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AGENT_ATTRIBUTES",
    "AGENT_TYPE",
    "BOOL",
    "COMMON_TYPES",
    "ENTITY_TYPES",
    "GROUP_TYPE",
    "HTTP_METHODS",
    "LONG",
    "MAPPED_ACTIONS",
    "OTHER_ACTION",
    "OTHER_TYPE",
    "ROUTE_TYPE",
    "STRING",
    "TOOL_CONTEXT",
    "TOOL_TYPE",
    "WARDEN_FACTS",
    "ActionDef",
    "Attr",
    "CedarType",
    "EntityDef",
    "Prim",
    "Record",
    "Ref",
    "SetOf",
]


@dataclass(frozen=True, slots=True)
class Prim:
    name: str  # "Long" | "String" | "Bool"


@dataclass(frozen=True, slots=True)
class SetOf:
    element: CedarType


@dataclass(frozen=True, slots=True)
class Attr:
    name: str
    type: CedarType
    required: bool = True
    doc: str = ""


@dataclass(frozen=True, slots=True)
class Record:
    attrs: tuple[Attr, ...]


@dataclass(frozen=True, slots=True)
class Ref:
    name: str  # a common type or an entity type


CedarType = Prim | SetOf | Record | Ref

LONG = Prim("Long")
STRING = Prim("String")
BOOL = Prim("Bool")


@dataclass(frozen=True, slots=True)
class EntityDef:
    name: str
    parents: tuple[str, ...] = ()
    shape: Record | None = None
    doc: str = ""


@dataclass(frozen=True, slots=True)
class ActionDef:
    names: tuple[str, ...]
    principals: tuple[str, ...]
    resources: tuple[str, ...]
    context: Record
    doc: str = ""


AGENT_TYPE = "Agent"
GROUP_TYPE = "Group"
TOOL_TYPE = "Tool"
ROUTE_TYPE = "Route"
MCP_SERVER_TYPE = "MCPServer"
MCP_RESOURCE_TYPE = "MCPResource"
MCP_PROMPT_TYPE = "MCPPrompt"
# Without a user schema, a PEP may send a subject or resource of any type: this declared
# stand-in makes Cedar check policies against "some type Warden knows nothing about" too.
OTHER_TYPE = "AnyOtherType"
OTHER_ACTION = "AnyOtherAction"  # likewise for actions

# The registered attributes of an agent principal (service/decisions.py builds them).
AGENT_ATTRIBUTES = Record(
    (
        Attr("name", STRING, doc="the agent's registered name"),
        Attr("owner", STRING, doc="the accountable human"),
        Attr("risk_tier", STRING, doc="low | medium | high | critical"),
        Attr("purpose", STRING),
        Attr("status", STRING, doc="active | suspended | decommissioned"),
        Attr("trust_domain", STRING),
    )
)

ENTITY_TYPES: tuple[EntityDef, ...] = (
    EntityDef(GROUP_TYPE, (GROUP_TYPE,), doc="an inventory group; agents are its members"),
    EntityDef(AGENT_TYPE, (GROUP_TYPE,), AGENT_ATTRIBUTES, doc='Agent::"<SPIFFE ID>"'),
    EntityDef(TOOL_TYPE, doc='a tool call of X is Action::"X" on Tool::"X"'),
    EntityDef(
        ROUTE_TYPE,
        shape=Record((Attr("path", STRING), Attr("host", STRING))),
        doc='forward-auth: Route::"<canonical path>"',
    ),
    EntityDef(MCP_SERVER_TYPE, doc="MCP proxy: the upstream server of a tools/call"),
    EntityDef(MCP_RESOURCE_TYPE, doc="MCP proxy: resources/read"),
    EntityDef(MCP_PROMPT_TYPE, doc="MCP proxy: prompts/get"),
)

# The server-derived facts under ``context.warden`` (DESIGN §5). Agent decisions carry every
# required member; a plain (non-agent) subject gets only ``now``.
_TASK = Record(
    (
        Attr("id", STRING),
        Attr("purpose", STRING),
        Attr("category", STRING),
        Attr("age", LONG, doc="seconds since the task started"),
        Attr("on_behalf_of", STRING, required=False),
    )
)
_APPROVAL = Record(
    (
        Attr("granted", BOOL, doc="a live approval exists for this exact call"),
        Attr("request_id", STRING, required=False),
    )
)
# Encoded only when some policy of the set mentions ``behaviour`` (they cost Cedar time), so
# whenever a policy reads them they are all there.
_BEHAVIOUR = Record(
    tuple(
        Attr(name, t)
        for name, t in (
            ("calls_in_window", LONG),
            ("baseline_calls", LONG),
            ("new_tool", BOOL),
            ("new_destination", BOOL),
            ("off_hours", BOOL),
            ("intent_drift", BOOL),
            ("deny_streak", LONG),
            ("score", LONG),
            ("step_up", BOOL),
        )
    )
)
_ATTESTATION = Record(
    (
        Attr("method", STRING, doc="jwt_svid | x509_svid | oidc | k8s | unix | join_token"),
        Attr("selectors", SetOf(STRING)),
        Attr("entry", STRING, required=False),
        Attr("trust_domain", STRING, required=False),
        Attr("spiffe_id", STRING, required=False),
        Attr("via", STRING, required=False),
    )
)
WARDEN_FACTS = Record(
    (
        Attr("now", LONG, doc="Unix seconds"),
        Attr("task", Ref("WardenTask")),
        Attr("scope", SetOf(STRING)),
        Attr("chain", SetOf(STRING), doc="SPIFFE IDs from the root task's agent"),
        Attr("depth", LONG),
        Attr("owner", STRING),
        Attr("approval", Ref("WardenApproval")),
        Attr("behaviour", Ref("WardenBehaviour")),
        Attr("attestation", Ref("WardenAttestation")),
    )
)
_HTTP = Record(
    (Attr("method", STRING), Attr("uri", STRING), Attr("path", STRING), Attr("host", STRING))
)

COMMON_TYPES: tuple[tuple[str, Record], ...] = (
    ("WardenTask", _TASK),
    ("WardenApproval", _APPROVAL),
    ("WardenBehaviour", _BEHAVIOUR),
    ("WardenAttestation", _ATTESTATION),
    ("WardenFacts", WARDEN_FACTS),
    ("WardenHttp", _HTTP),
)

HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

# The context of a tool call whose arguments no user schema types: ``arguments`` is an empty
# record, so a policy must test ``context.arguments has x`` before reading it. Declare the
# action in your own ``*.cedarschema`` to type its arguments.
TOOL_CONTEXT = Record(
    (
        Attr("warden", Ref("WardenFacts")),
        Attr("action", Record(())),
        Attr("arguments", Record(()), required=False),
        Attr("http", Ref("WardenHttp"), required=False),
        Attr("listing", BOOL, required=False),
    )
)

MAPPED_ACTIONS: tuple[ActionDef, ...] = (
    ActionDef(
        HTTP_METHODS,
        (AGENT_TYPE,),
        (ROUTE_TYPE,),
        Record(
            (
                Attr("warden", Ref("WardenFacts")),
                Attr("action", Record(())),
                Attr("http", Ref("WardenHttp")),
            )
        ),
        doc="forward-auth: the HTTP method on the route",
    ),
)
