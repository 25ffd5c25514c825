"""The Cedar request as evaluated, kept in each decision record so it can be replayed.

``request_record(req)`` is what a decision's audit record holds under ``cedar``: principal
(with its attributes and parents), action, resource (with attributes) and the full context,
``context.warden`` included. Values under secret-looking keys (``core.masking``) are never
written: each is replaced by ``{"__masked": "sha256:<hex>"}`` and its path listed in
``masked``, so a replay knows what it cannot see. ``request_from_record`` rebuilds the
``AuthzRequest`` (a masked value becomes its digest string).

``context_reads(body)`` lists the context paths a policy reads (``context.a.b`` accesses and
``context.a has b`` tests, from its EST): ``explain`` shows them, and a replay calls a result
uncertain when a policy that applies reads a masked path.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from warden.core.masking import is_secret_key

from .types import AuthzRequest, EntityRef

__all__ = [
    "MASKED_KEY",
    "context_reads",
    "overlaps",
    "request_from_record",
    "request_record",
]

MASKED_KEY = "__masked"
_MAX_DEPTH = 32


def _digest(value: Any) -> str:
    try:
        data = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        data = repr(value).encode()
    return "sha256:" + hashlib.sha256(b"warden-masked\0" + data).hexdigest()


def _mask(value: Any, path: str, masked: list[str], depth: int) -> Any:
    if depth > _MAX_DEPTH:
        masked.append(path)
        return {MASKED_KEY: _digest(value)}
    t = type(value)
    if t is str or t is int or t is bool:
        return value
    if t is dict or isinstance(value, Mapping):
        out: dict[str, Any] = {}
        inner = depth < _MAX_DEPTH  # a scalar one level down needs no call of its own
        for k, v in value.items():
            key = k if type(k) is str else str(k)
            if is_secret_key(key):
                masked.append(f"{path}.{key}")
                out[key] = {MASKED_KEY: _digest(v)}
                continue
            tv = type(v)
            if inner and (tv is str or tv is int or tv is bool):
                out[key] = v
            else:
                out[key] = _mask(v, f"{path}.{key}", masked, depth + 1)
        return out
    if isinstance(value, list | tuple | set | frozenset):
        return [_mask(v, path, masked, depth + 1) for v in value]
    return value


def request_record(req: AuthzRequest) -> dict[str, Any]:
    """The JSON-able record of a Cedar request, secrets replaced by digests."""
    masked: list[str] = []
    record: dict[str, Any] = {
        "principal": {"type": req.principal.type, "id": req.principal.id},
        "action": req.action,
        "resource": {"type": req.resource.type, "id": req.resource.id},
        "context": _mask(req.context, "context", masked, 0),
    }
    if req.principal_attrs:
        record["principal_attrs"] = _mask(req.principal_attrs, "principal", masked, 0)
    if req.principal_parents:
        record["parents"] = [[p.type, p.id] for p in req.principal_parents]
    if req.resource_attrs:
        record["resource_attrs"] = _mask(req.resource_attrs, "resource", masked, 0)
    if masked:
        record["masked"] = masked
    return record


def _unmask(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1 and MASKED_KEY in value:
            return str(value[MASKED_KEY])
        return {k: _unmask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unmask(v) for v in value]
    return value


def _ref(value: Any) -> EntityRef:
    if not isinstance(value, Mapping):
        raise ValueError("an entity must be an object with `type` and `id`")
    return EntityRef(str(value["type"]), str(value["id"]))


def request_from_record(record: Mapping[str, Any]) -> tuple[AuthzRequest, tuple[str, ...]]:
    """(the request, masked paths) of a recorded request; ``ValueError`` if malformed."""
    try:
        parents = tuple(EntityRef(str(t), str(i)) for t, i in record.get("parents") or ())
        masked = tuple(str(p) for p in record.get("masked") or ())
        pattrs = record.get("principal_attrs")
        rattrs = record.get("resource_attrs")
        context = record.get("context") or {}
        if masked:
            context = _unmask(context)
            pattrs = _unmask(pattrs) if pattrs else pattrs
            rattrs = _unmask(rattrs) if rattrs else rattrs
        req = AuthzRequest(
            principal=_ref(record["principal"]),
            principal_attrs=pattrs or None,
            principal_parents=parents,
            action=str(record["action"]),
            resource=_ref(record["resource"]),
            resource_attrs=rattrs or None,
            context=context,
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed recorded request: {exc}") from exc
    return req, masked


# --------------------------------------------------------------------------- reads


def _path_of(node: Any) -> list[str] | None:
    """``context.a.b`` (EST ``.`` chains rooted at the ``context`` variable) as [a, b]."""
    parts: list[str] = []
    while isinstance(node, Mapping):
        if "." in node and isinstance(node["."], Mapping):
            inner = node["."]
            parts.append(str(inner.get("attr")))
            node = inner.get("left")
            continue
        if node.get("Var") == "context":
            return list(reversed(parts))
        return None
    return None


def context_reads(body: Any) -> set[str]:
    """The ``context.…`` paths a policy's EST reads (accesses and ``has`` tests)."""
    found: set[str] = set()
    stack = [body]
    while stack:
        node = stack.pop()
        if isinstance(node, Mapping):
            for op in (".", "has"):
                inner = node.get(op)
                if isinstance(inner, Mapping):
                    base = _path_of(inner.get("left"))
                    if base is not None:
                        found.add(".".join(["context", *base, str(inner.get("attr"))]))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    # keep the deepest paths: reading `context.a.b` reads `context.a` on the way
    return {p for p in found if not any(q.startswith(p + ".") for q in found)}


def overlaps(reads: Iterable[str], masked: Iterable[str]) -> bool:
    """Does any read path touch a masked path (one is a prefix of the other)?"""
    masked = tuple(masked)
    for read in reads:
        for m in masked:
            if read == m or read.startswith(m + ".") or m.startswith(read + "."):
                return True
    return False
