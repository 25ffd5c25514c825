"""The Cedar schema policies are validated against: Warden's model, plus the user's.

``render_text()`` / ``render_json()`` turn ``model.py`` into a Cedar schema (the output of
``warden policies schema``). ``effective_schema`` builds what a policy folder is validated
against (strict mode, always):

* **with a user schema** (``*.cedarschema`` or ``*.cedarschema.json``) it is Warden's schema
  plus the user's: the user's file may use Warden's types (``Agent``, ``WardenFacts``, …) and
  declares its own tool actions (typing their ``context.arguments``) and entity types. A user
  declaration of a name Warden also declares replaces Warden's. Nothing else is added: the
  two together must describe every policy.
* **without one**, Warden's schema is extended with a declaration of every entity type and
  action the policies name that it does not know: a custom type gets no attributes, a tool
  action gets ``TOOL_CONTEXT`` (untyped ``arguments``). Warden's own model (agent attributes,
  ``context.warden``) is still checked strictly, so a typo there is caught at load time.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import model
from .model import ActionDef, Attr, CedarType, EntityDef, Prim, Record, Ref, SetOf
from .source import tokenize

__all__ = [
    "Declared",
    "EffectiveSchema",
    "declared_in_json",
    "declared_in_text",
    "effective_schema",
    "mapped_action_names",
    "names_in_est",
    "render_json",
    "render_text",
    "warden_relevant",
]

_HEADER = (
    "// Warden's Cedar model, generated from warden.authz.model (`warden policies schema`).\n"
    "// Extend it with your own *.cedarschema: declare your tool actions (with typed\n"
    "// arguments) and entity types there; use Warden's types by name.\n"
)


@dataclass(frozen=True, slots=True)
class Declared:
    """Names a user schema declares in the empty namespace."""

    entities: frozenset[str] = frozenset()
    actions: frozenset[str] = frozenset()
    common: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class EffectiveSchema:
    text: str  # Cedar schema text (or JSON text when the user's schema is JSON)
    is_json: bool
    auto_entities: tuple[str, ...] = ()
    auto_actions: tuple[str, ...] = ()
    base_lines: int = 0  # lines of Warden's part before the user's text
    notes: tuple[str, ...] = field(default=())


# --------------------------------------------------------------------------- rendering


def _quote(name: str) -> str:
    return json.dumps(name)


def _type_text(t: CedarType, indent: int = 0) -> str:
    if isinstance(t, Prim):
        return t.name
    if isinstance(t, SetOf):
        return f"Set<{_type_text(t.element, indent)}>"
    if isinstance(t, Ref):
        return t.name
    if not t.attrs:
        return "{}"
    pad = "  " * (indent + 1)
    lines = [
        f"{pad}{_quote(a.name)}{'' if a.required else '?'}: {_type_text(a.type, indent + 1)},"
        for a in t.attrs
    ]
    return "{\n" + "\n".join(lines) + "\n" + "  " * indent + "}"


def _entity_text(e: EntityDef) -> str:
    parents = f" in [{', '.join(e.parents)}]" if e.parents else ""
    shape = f" {_type_text(e.shape)}" if e.shape is not None and e.shape.attrs else ""
    doc = f"// {e.doc}\n" if e.doc else ""
    return f"{doc}entity {e.name}{parents}{shape};"


def _action_text(a: ActionDef) -> str:
    names = ", ".join(_quote(n) for n in a.names)
    doc = f"// {a.doc}\n" if a.doc else ""
    return (
        f"{doc}action {names} appliesTo {{\n"
        f"  principal: [{', '.join(a.principals)}],\n"
        f"  resource: [{', '.join(a.resources)}],\n"
        f"  context: {_type_text(a.context, 1)}\n"
        "};"
    )


def _base(skip: Declared) -> tuple[list[tuple[str, Record]], list[EntityDef], list[ActionDef]]:
    commons = [(n, r) for n, r in model.COMMON_TYPES if n not in skip.common]
    entities = [e for e in model.ENTITY_TYPES if e.name not in skip.entities]
    actions = []
    for a in model.MAPPED_ACTIONS:
        names = tuple(n for n in a.names if n not in skip.actions)
        if names:
            actions.append(ActionDef(names, a.principals, a.resources, a.context, a.doc))
    return commons, entities, actions


def _auto(
    entities: Iterable[str], actions: Iterable[str], all_types: list[str]
) -> tuple[list[str], list[ActionDef]]:
    """Declarations for what policies name that no schema declares (no user schema only)."""
    by_ns: dict[str, list[str]] = {}
    for name in sorted(entities):
        ns, _, base = name.rpartition("::")
        by_ns.setdefault(ns, []).append(base)
    blocks = []
    for ns, names in sorted(by_ns.items()):
        decl = "\n".join(f"entity {n};" for n in names)
        blocks.append(decl if not ns else f"namespace {ns} {{\n{decl}\n}}")
    acts = sorted(actions)
    defs = [ActionDef(tuple(acts), tuple(all_types), tuple(all_types), model.TOOL_CONTEXT)]
    return blocks, defs if acts else []


def render_text(
    *,
    skip: Declared = Declared(),
    auto_entities: Iterable[str] = (),
    auto_actions: Iterable[str] = (),
) -> str:
    """Warden's schema in Cedar schema syntax (plus auto-declarations, see the module doc)."""
    commons, entities, actions = _base(skip)
    parts = [_HEADER]
    parts += [f"type {n} = {_type_text(r)};" for n, r in commons]
    parts += [_entity_text(e) for e in entities]
    parts += [_action_text(a) for a in actions]
    auto_entities = sorted(set(auto_entities))
    auto_actions = sorted(set(auto_actions))
    if auto_entities or auto_actions:
        all_types = [e.name for e in entities] + auto_entities
        blocks, defs = _auto(auto_entities, auto_actions, all_types)
        parts.append("// Named by the policies, declared by no schema (add yours to type them):")
        parts += blocks
        parts += [_action_text(a) for a in defs]
    return "\n\n".join(parts) + "\n"


def _type_json(t: CedarType) -> dict[str, Any]:
    if isinstance(t, Prim):
        return {"type": "Boolean" if t.name == "Bool" else t.name}
    if isinstance(t, SetOf):
        return {"type": "Set", "element": _type_json(t.element)}
    if isinstance(t, Ref):
        return {"type": t.name}
    return {"type": "Record", "attributes": {a.name: _attr_json(a) for a in t.attrs}}


def _attr_json(a: Attr) -> dict[str, Any]:
    out = _type_json(a.type)
    out["required"] = a.required
    return out


def render_json(*, skip: Declared = Declared()) -> dict[str, Any]:
    """Warden's schema in Cedar's JSON schema format (empty namespace)."""
    commons, entities, actions = _base(skip)
    entity_types: dict[str, Any] = {}
    for e in entities:
        spec: dict[str, Any] = {}
        if e.parents:
            spec["memberOfTypes"] = list(e.parents)
        if e.shape is not None and e.shape.attrs:
            spec["shape"] = _type_json(e.shape)
        entity_types[e.name] = spec
    action_map: dict[str, Any] = {}
    for a in actions:
        for n in a.names:
            action_map[n] = {
                "appliesTo": {
                    "principalTypes": list(a.principals),
                    "resourceTypes": list(a.resources),
                    "context": _type_json(a.context),
                }
            }
    return {
        "": {
            "commonTypes": {n: _type_json(r) for n, r in commons},
            "entityTypes": entity_types,
            "actions": action_map,
        }
    }


# --------------------------------------------------------------------------- user schemas


def declared_in_text(text: str) -> Declared:
    """Entity types, actions and common types a Cedar schema text declares outside namespaces."""
    tokens = tokenize(text)
    entities: set[str] = set()
    actions: set[str] = set()
    common: set[str] = set()
    depth = 0
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.text in ("{", "[", "(", "<"):
            depth += 1
        elif tok.text in ("}", "]", ")", ">"):
            depth = max(0, depth - 1)
        elif depth == 0 and tok.kind == "ident" and tok.text in ("entity", "action", "type"):
            names: list[str] = []
            j = i + 1
            while j < len(tokens) and tokens[j].kind in ("ident", "string"):
                names.append(
                    tokens[j].text.strip('"') if tokens[j].kind == "string" else tokens[j].text
                )
                if j + 1 < len(tokens) and tokens[j + 1].text == ",":
                    j += 2
                    continue
                j += 1
                break
            target = {"entity": entities, "action": actions, "type": common}[tok.text]
            target.update(names)
            i = j
            continue
        i += 1
    return Declared(frozenset(entities), frozenset(actions), frozenset(common))


def declared_in_json(doc: Mapping[str, Any]) -> Declared:
    ns = doc.get("") if isinstance(doc, Mapping) else None
    if not isinstance(ns, Mapping):
        return Declared()

    def keys(name: str) -> frozenset[str]:
        part = ns.get(name)
        return frozenset(part) if isinstance(part, Mapping) else frozenset()

    return Declared(keys("entityTypes"), keys("actions"), keys("commonTypes"))


def mapped_action_names() -> frozenset[str]:
    return frozenset(n for a in model.MAPPED_ACTIONS for n in a.names)


def _union(a: Declared, b: Declared) -> Declared:
    return Declared(a.entities | b.entities, a.actions | b.actions, a.common | b.common)


def effective_schema(
    user: tuple[str, str] | None,
    named_entities: Iterable[str] = (),
    named_actions: Iterable[str] = (),
    *,
    skip: Declared = Declared(),
) -> EffectiveSchema:
    """What a folder is validated against; ``user`` is (file name, text) of its schema.

    ``skip`` leaves Warden declarations out (entities are checked without Warden's actions).
    Raises ``ValueError`` when a JSON user schema is not a JSON object.
    """
    if user is None:
        known_entities = {e.name for e in model.ENTITY_TYPES}
        known_actions = mapped_action_names()
        auto_e = sorted((set(named_entities) - known_entities - {"Action"}) | {model.OTHER_TYPE})
        auto_a = sorted((set(named_actions) - known_actions) | {model.OTHER_ACTION})
        text = render_text(auto_entities=auto_e, auto_actions=auto_a)
        return EffectiveSchema(text, False, tuple(auto_e), tuple(auto_a))
    name, user_text = user
    if name.endswith(".json"):
        doc = json.loads(user_text)
        if not isinstance(doc, dict):
            raise ValueError("a JSON schema must be an object of namespaces")
        merged = copy.deepcopy(doc)
        base = render_json(skip=_union(skip, declared_in_json(doc)))[""]
        ns = merged.setdefault("", {})
        if not isinstance(ns, dict):
            raise ValueError("the empty namespace must be an object")
        for key, value in base.items():
            part = ns.setdefault(key, {})
            if isinstance(part, dict):
                for k, v in value.items():
                    part.setdefault(k, v)
        return EffectiveSchema(json.dumps(merged), True)
    base_text = render_text(skip=_union(skip, declared_in_text(user_text)))
    return EffectiveSchema(
        base_text + "\n" + user_text, False, base_lines=base_text.count("\n") + 1
    )


def names_in_est(body: Any) -> tuple[set[str], set[str]]:
    """(entity types, action ids) an EST policy body names anywhere."""
    types: set[str] = set()
    actions: set[str] = set()
    stack = [body]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            t, i = node.get("type"), node.get("id")
            if isinstance(t, str) and isinstance(i, str) and len(node) == 2:
                if t == "Action":
                    actions.add(i)
                elif not t.endswith("::Action"):
                    types.add(t)
            et = node.get("entity_type")
            if isinstance(et, str):
                types.add(et)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return types, actions


_ATTR_ON_TYPE = re.compile(r"attribute `([^`]+)` on entity type `([^`]+)` not found")


def warden_relevant(errors: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The validation errors about Warden's own model, when no user schema types the rest.

    Without a user schema, PEP context and custom entity types are untyped, so Cedar's
    complaints about them are noise. Kept: anything about ``context.warden`` (a typo, an
    unguarded optional member, a wrong type), parse-level errors, and a missing attribute of
    an entity type Warden gives attributes (``Agent``, ``Route``) unless it is also missing
    from a type without declared attributes (then the policy's scope lets in types Warden
    knows nothing about, and the attribute may be theirs: write ``principal is Agent`` to
    have agent attributes checked).
    """
    shaped = {e.name for e in model.ENTITY_TYPES if e.shape is not None and e.shape.attrs}
    missing_elsewhere: set[tuple[str, str]] = set()
    for pid, message in errors:
        m = _ATTR_ON_TYPE.search(message)
        if m and m.group(2) not in shaped:
            missing_elsewhere.add((pid, m.group(1)))
    kept = []
    for pid, message in errors:
        m = _ATTR_ON_TYPE.search(message)
        if m:
            if m.group(2) in shaped and (pid, m.group(1)) not in missing_elsewhere:
                kept.append((pid, message))
        elif "`warden." in message or "`warden`" in message or "parse error" in message:
            kept.append((pid, message))
    return kept
