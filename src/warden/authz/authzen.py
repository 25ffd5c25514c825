"""AuthZEN 1.0 wire parsing and the AuthZEN → Cedar mapping (DESIGN §4).

Pure functions over already-decoded JSON (Python objects). Malformed input raises
``InvalidParameterError`` with a precise message and ``detail={"field": ...}``; the API
layer renders it as a 400. Unknown fields are ignored everywhere.

Batch inheritance (``/access/v1/evaluations``). Top-level ``subject``, ``action``,
``resource`` and ``context`` are defaults; a key present in an item replaces the default
wholesale — ``properties`` are never deep-merged. The one exception, from the
certification scenario (§c-3-2-7): a required identifier (``type``/``id``, ``name``)
missing from an item's entity falls back to the default's. An item that still lacks a
subject, action or resource is a per-item error (answered ``decision: false``), not a 400.

Mapping (``to_cedar``). ``subject`` → principal ``{type}::"{id}"`` with its properties as
attributes; ``action.name`` → ``Action::"{name}"``; ``resource`` → resource; the request
``context`` becomes the Cedar context with any top-level ``warden`` key discarded,
``context.action`` set to ``action.properties`` (``{}`` when absent; a PEP-sent
``context.action`` is replaced) and ``context.warden`` set to the server-derived record
(``{}`` when none is given, so policies can always test ``context.warden has …``).
Tool calls in the COAZ-MCP default shape (action ``tools/call``, resource
``{type: "tool", id: X}``) become ``Action::"X"`` on ``Tool::"X"``. Any other action on a tool
resource (``tool``, ``Tool`` or a look-alike) must name the same tool exactly, or the request
is refused (``ToolMismatchError``, ``tool_mismatch``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from warden.core.names import is_tool_type
from warden.errors import InvalidParameterError, PolicyEvaluationError, ToolMismatchError

from .pdp import PolicyDecisionPoint
from .types import AuthzRequest, Decision, EntityRef

__all__ = [
    "TOOL_CALL_ACTION",
    "TOOL_TYPE",
    "ActionInput",
    "EntityInput",
    "EvaluationInput",
    "ItemResult",
    "SearchInput",
    "SearchKind",
    "Semantic",
    "cedar_context",
    "evaluate_items",
    "parse_evaluation",
    "parse_evaluations",
    "parse_search",
    "run_search",
    "to_cedar",
]

TOOL_CALL_ACTION = "tools/call"
TOOL_TYPE = "Tool"
_EMPTY: Mapping[str, Any] = {}


class Semantic(StrEnum):
    """``options.evaluations_semantic`` of a batch request."""

    EXECUTE_ALL = "execute_all"
    DENY_ON_FIRST_DENY = "deny_on_first_deny"
    PERMIT_ON_FIRST_PERMIT = "permit_on_first_permit"


class SearchKind(StrEnum):
    SUBJECT = "subject"
    RESOURCE = "resource"
    ACTION = "action"


@dataclass(frozen=True, slots=True)
class EntityInput:
    """An AuthZEN subject or resource."""

    type: str
    id: str
    properties: Mapping[str, Any] | None = None

    @property
    def ref(self) -> EntityRef:
        return EntityRef(self.type, self.id)


@dataclass(frozen=True, slots=True)
class ActionInput:
    name: str
    properties: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class EvaluationInput:
    """One validated access evaluation request."""

    subject: EntityInput
    action: ActionInput
    resource: EntityInput
    context: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SearchInput:
    """One validated search request.

    The searched-for entity has only a type (``subject_type`` / ``resource_type``; its
    ``id`` and properties are ignored); the other entities are fully identified. ``action``
    is ``None`` for an action search. ``page`` is accepted and ignored: Warden returns the
    full result set.
    """

    kind: SearchKind
    subject_type: str
    subject: EntityInput | None
    action: ActionInput | None
    resource_type: str
    resource: EntityInput | None
    context: Mapping[str, Any] = field(default_factory=dict)
    page: Mapping[str, Any] | None = None


# =========================================================================== parsing


def _bad(message: str, where: str) -> InvalidParameterError:
    return InvalidParameterError(message, detail={"field": where})


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _bad(f"`{where}` must be an object", where)
    return value


def _require(body: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in body or body[key] is None:
        raise _bad(f"missing required field `{where}`", where)
    return body[key]


def _string(body: Mapping[str, Any], key: str, where: str) -> str:
    value = _require(body, key, where)
    if not isinstance(value, str):
        raise _bad(f"`{where}` must be a string", where)
    return value


def _properties(body: Mapping[str, Any], where: str) -> dict[str, Any] | None:
    value = body.get("properties")
    if value is None:
        return None
    return _object(value, f"{where}.properties")


def _entity(value: Any, where: str, *, need_id: bool = True) -> EntityInput:
    body = _object(value, where)
    entity_type = _string(body, "type", f"{where}.type")
    entity_id = _string(body, "id", f"{where}.id") if need_id else ""
    return EntityInput(entity_type, entity_id, _properties(body, where))


def _action(value: Any, where: str) -> ActionInput:
    body = _object(value, where)
    return ActionInput(_string(body, "name", f"{where}.name"), _properties(body, where))


def _context(body: Mapping[str, Any], where: str) -> dict[str, Any]:
    value = body.get("context")
    if value is None:
        return {}
    return _object(value, where)


def _body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _bad("the request body must be a JSON object", "body")
    return body


def parse_evaluation(body: Any) -> EvaluationInput:
    """Validate an Access Evaluation request ``{subject, action, resource, context?}``."""
    doc = _body(body)
    return EvaluationInput(
        subject=_entity(_require(doc, "subject", "subject"), "subject"),
        action=_action(_require(doc, "action", "action"), "action"),
        resource=_entity(_require(doc, "resource", "resource"), "resource"),
        context=_context(doc, "context"),
    )


def _check_partial(doc: Mapping[str, Any], key: str, required: tuple[str, ...]) -> None:
    """A top-level default may be partial, but what it has must be well-typed."""
    if doc.get(key) is None:
        return
    value = _object(doc[key], key)
    for sub in required:
        if value.get(sub) is not None and not isinstance(value[sub], str):
            raise _bad(f"`{key}.{sub}` must be a string", f"{key}.{sub}")
    if value.get("properties") is not None:
        _object(value["properties"], f"{key}.properties")


def _inherit(item: Any, defaults: Mapping[str, Any], key: str, required: tuple[str, ...]) -> Any:
    if key not in item or item[key] is None:
        return defaults.get(key)
    value = item[key]
    default = defaults.get(key)
    if isinstance(value, dict) and isinstance(default, dict):
        missing = [
            sub for sub in required if value.get(sub) is None and default.get(sub) is not None
        ]
        if missing:
            value = {**value, **{sub: default[sub] for sub in missing}}
    return value


def parse_evaluations(
    body: Any,
) -> tuple[list[EvaluationInput | InvalidParameterError], Semantic]:
    """Validate an Access Evaluations (batch) request.

    Returns one entry per item of ``evaluations`` — the validated input, or the
    ``InvalidParameterError`` that item alone failed with (answer it ``decision: false``)
    — and the evaluation semantic. When ``evaluations`` is absent or empty the list is
    empty: the caller treats the body as a single evaluation (``parse_evaluation``).
    Whole-payload problems (body not an object, ``evaluations`` not a list, a malformed
    default, an unknown semantic) raise ``InvalidParameterError``.
    """
    doc = _body(body)
    semantic = Semantic.EXECUTE_ALL
    options = doc.get("options")
    if options is not None:
        options = _object(options, "options")
        raw = options.get("evaluations_semantic")
        if raw is not None:
            try:
                semantic = Semantic(raw)
            except (ValueError, TypeError):
                allowed = ", ".join(f"`{s.value}`" for s in Semantic)
                raise _bad(
                    f"unknown `options.evaluations_semantic` `{raw}`: expected one of {allowed}",
                    "options.evaluations_semantic",
                ) from None
    items = doc.get("evaluations")
    if items is None:
        return [], semantic
    if not isinstance(items, list):
        raise _bad("`evaluations` must be an array", "evaluations")
    _check_partial(doc, "subject", ("type", "id"))
    _check_partial(doc, "resource", ("type", "id"))
    _check_partial(doc, "action", ("name",))
    if doc.get("context") is not None:
        _object(doc["context"], "context")

    parsed: list[EvaluationInput | InvalidParameterError] = []
    for index, item in enumerate(items):
        where = f"evaluations[{index}]"
        if not isinstance(item, dict):
            parsed.append(_bad(f"`{where}` must be an object", where))
            continue
        try:
            merged = {
                "subject": _inherit(item, doc, "subject", ("type", "id")),
                "action": _inherit(item, doc, "action", ("name",)),
                "resource": _inherit(item, doc, "resource", ("type", "id")),
                "context": item["context"]
                if item.get("context") is not None
                else doc.get("context"),
            }
            parsed.append(_prefixed(parse_evaluation, merged, where))
        except InvalidParameterError as exc:
            parsed.append(exc)
    return parsed, semantic


def _prefixed(fn: Any, merged: dict[str, Any], where: str) -> EvaluationInput:
    try:
        result: EvaluationInput = fn(merged)
    except InvalidParameterError as exc:
        inner = str(exc.detail.get("field", ""))
        raise _bad(f"{where}: {exc.message}", f"{where}.{inner}" if inner else where) from None
    return result


def parse_search(body: Any, kind: SearchKind | str) -> SearchInput:
    """Validate a subject, resource or action search request."""
    kind = SearchKind(kind)
    doc = _body(body)
    context = _context(doc, "context")
    page = doc.get("page")
    if page is not None:
        page = _object(page, "page")
    subject: EntityInput | None = None
    resource: EntityInput | None = None
    action: ActionInput | None = None
    if kind is SearchKind.SUBJECT:
        subject_type = _entity(_require(doc, "subject", "subject"), "subject", need_id=False).type
    else:
        subject = _entity(_require(doc, "subject", "subject"), "subject")
        subject_type = subject.type
    if kind is not SearchKind.ACTION:
        action = _action(_require(doc, "action", "action"), "action")
    if kind is SearchKind.RESOURCE:
        resource_type = _entity(
            _require(doc, "resource", "resource"), "resource", need_id=False
        ).type
    else:
        resource = _entity(_require(doc, "resource", "resource"), "resource")
        resource_type = resource.type
    return SearchInput(kind, subject_type, subject, action, resource_type, resource, context, page)


# =========================================================================== mapping


def cedar_context(
    context: Mapping[str, Any],
    action_properties: Mapping[str, Any] | None,
    warden_context: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The Cedar context for an AuthZEN request (see the module docstring)."""
    cedar = {k: v for k, v in context.items() if k != "warden"} if context else {}
    cedar["action"] = action_properties if action_properties is not None else {}
    cedar["warden"] = warden_context if warden_context is not None else {}
    return cedar


def to_cedar(
    ev: EvaluationInput,
    *,
    warden_context: Mapping[str, Any] | None = None,
    principal_parents: tuple[EntityRef, ...] = (),
) -> AuthzRequest:
    """Map a validated AuthZEN evaluation to a Cedar request (DESIGN §4)."""
    action = ev.action.name
    resource = ev.resource
    if is_tool_type(resource.type):
        # one call names one tool: the action and the resource agree, exactly (ADR 0080)
        if action == TOOL_CALL_ACTION:
            action = resource.id
        elif action != resource.id:
            raise ToolMismatchError(
                f"action `{action[:80]}` and tool resource `{resource.id[:80]}` name "
                "different tools",
                detail={"field": "resource.id"},
            )
        resource_ref = EntityRef(TOOL_TYPE, resource.id)
    else:
        resource_ref = EntityRef(resource.type, resource.id)
    return AuthzRequest(
        principal=EntityRef(ev.subject.type, ev.subject.id),
        principal_attrs=ev.subject.properties,
        principal_parents=principal_parents,
        action=action,
        resource=resource_ref,
        resource_attrs=resource.properties,
        context=cedar_context(ev.context, ev.action.properties, warden_context),
    )


# =========================================================================== execution

ItemResult = Decision | InvalidParameterError | PolicyEvaluationError


def evaluate_items(
    pdp: PolicyDecisionPoint,
    items: Sequence[EvaluationInput | InvalidParameterError],
    semantic: Semantic = Semantic.EXECUTE_ALL,
    *,
    warden_context: Mapping[str, Any] | None = None,
) -> list[ItemResult]:
    """Evaluate batch items and apply the batch semantic.

    Each result is a ``Decision`` or the error that item failed with (answer it
    ``decision: false``). With ``deny_on_first_deny`` the list stops at, and includes, the
    first deny or error; with ``permit_on_first_permit`` at the first permit. Items are
    evaluated together (one Cedar batch call where slices allow) and the list truncated.
    """
    requests: list[AuthzRequest] = []
    positions: list[int] = []
    results: list[ItemResult | None] = [None] * len(items)
    for i, item in enumerate(items):
        if isinstance(item, InvalidParameterError):
            results[i] = item
            continue
        try:
            requests.append(to_cedar(item, warden_context=warden_context))
        except ToolMismatchError as exc:  # that item alone is refused
            results[i] = InvalidParameterError(exc.message, detail=exc.detail)
            continue
        positions.append(i)
    for i, decision in zip(positions, pdp.evaluate_batch(requests), strict=True):
        results[i] = decision
    out: list[ItemResult] = []
    for result in results:
        assert result is not None
        out.append(result)
        allowed = isinstance(result, Decision) and result.allowed
        if semantic is Semantic.DENY_ON_FIRST_DENY and not allowed:
            break
        if semantic is Semantic.PERMIT_ON_FIRST_PERMIT and allowed:
            break
    return out


def run_search(
    pdp: PolicyDecisionPoint,
    search: SearchInput,
    *,
    warden_context: Mapping[str, Any] | None = None,
) -> list[dict[str, str]]:
    """Run a search against the PDP's entity store; AuthZEN ``results`` entries.

    Subjects and resources come back as ``{"type", "id"}``, actions as ``{"name"}``.
    Unknown types (and type names Cedar cannot hold) give no results.
    """
    action_props = search.action.properties if search.action is not None else None
    context = cedar_context(search.context, action_props, warden_context)
    if search.kind is SearchKind.SUBJECT:
        assert search.resource is not None and search.action is not None
        found = pdp.search_subjects(
            search.subject_type,
            search.action.name,
            search.resource.ref,
            context,
            resource_attrs=search.resource.properties,
        )
        return [{"type": r.type, "id": r.id} for r in found]
    if search.kind is SearchKind.RESOURCE:
        assert search.subject is not None and search.action is not None
        found = pdp.search_resources(
            search.subject.ref,
            search.subject.properties,
            search.action.name,
            search.resource_type,
            context,
        )
        return [{"type": r.type, "id": r.id} for r in found]
    assert search.subject is not None and search.resource is not None
    names = pdp.search_actions(
        search.subject.ref,
        search.subject.properties,
        search.resource.ref,
        search.resource.properties,
        context,
    )
    return [{"name": n} for n in names]
