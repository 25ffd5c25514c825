"""Send Cedar only the part of ``context.warden`` that the policies can read (ADR 0140).

Cedar parses the whole context of every request, even the parts no policy reads. Decoding the
server-built ``context.warden`` record (task, scope, chain, attestation, manifest, behaviour)
was most of a decision's cost. So each policy's EST is read once at load time for what it can
see of ``context.warden``; a slice's ``WardenReads`` is the union over its policies, and the
PDP hands Cedar the record cut down to it.

A ``WardenReads`` is ``None`` (the whole record) or a mapping from a key to the
``WardenReads`` of its value (``{}``: nothing under it). It is built so that a policy sees
exactly what it would see in the full record:

* ``context.warden.a.b`` (an access) keeps ``a.b`` whole, present or absent as in the full
  record; ``context.warden.a has b`` (a test; Cedar desugars ``has a.b`` into a test per step)
  keeps ``b`` present where it is, as a record with nothing else in it when it is a record;
* anything that can see a record *as a value* keeps that record whole: ``context.warden.task
  == …``, ``{x: context.warden}``; and the bare
  ``context`` variable anywhere but at the root of an access chain (``if … then context else …``)
  keeps everything;
* a value that is not a record (a set, a string) is kept whole whatever is read below it, so an
  access that errors on the full record errors the same way on the cut one.

The decision record keeps the full request (``recording.request_record``): a replay against a
candidate set that reads more still sees every fact.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

__all__ = ["NOTHING", "WardenReads", "merge", "project", "warden_reads"]

WardenReads = Mapping[str, Any] | None  # Mapping[str, WardenReads] | None (whole)
NOTHING: WardenReads = MappingProxyType({})  # immutable: a shared default
_KEY = "warden"


def _chain(node: Any) -> list[str] | None:
    """``context.a.b`` (``.`` accesses rooted at the ``context`` variable) as ``[a, b]``."""
    parts: list[str] = []
    while type(node) is dict:
        inner = node.get(".")
        if len(node) == 1 and type(inner) is dict and "attr" in inner:
            parts.append(str(inner["attr"]))
            node = inner.get("left")
            continue
        if len(node) == 1 and node.get("Var") == "context":
            parts.reverse()
            return parts
        return None
    return None


def _insert(tree: dict[str, Any], path: list[str], *, whole: bool) -> None:
    """Mark ``path`` as read in ``tree``: its value whole (an access) or only whether it is
    there (a ``has`` test: ``{}``, a record with nothing under it)."""
    for part in path[:-1]:
        if part in tree:
            sub = tree[part]
            if sub is None:
                return  # a deeper read of a whole value adds nothing
        else:
            sub = tree[part] = {}
        tree = sub
    last = path[-1]
    if whole:
        tree[last] = None
    else:
        tree.setdefault(last, {})


def _context_reads(body: Any) -> dict[str, Any] | None:
    """What a policy EST reads of ``context``, as a tree (``None``: the whole context)."""
    tree: dict[str, Any] = {}
    stack = [body]
    while stack:
        node = stack.pop()
        if type(node) is list:
            stack.extend(node)
            continue
        if type(node) is not dict:
            continue
        if node.get("Var") == "context":
            return None  # the context as a value: anything in it may be seen
        matched = False
        for op in (".", "has"):
            inner = node.get(op)
            if len(node) == 1 and type(inner) is dict and "attr" in inner:
                base = _chain(inner.get("left"))
                if base is not None:
                    _insert(tree, [*base, str(inner["attr"])], whole=op == ".")
                    matched = True  # the chain holds nothing else to look at
                break
        if not matched:
            stack.extend(node.values())
    return tree


def warden_reads(body: Any) -> WardenReads:
    """What one policy (its EST ``body``) can read of ``context.warden``."""
    tree = _context_reads(body)
    if tree is None:
        return None
    return tree.get(_KEY, NOTHING) if _KEY in tree else NOTHING


def _merge2(a: WardenReads, b: WardenReads) -> WardenReads:
    if a is None or b is None:
        return None
    if not a:
        return b
    if not b:
        return a
    out = dict(a)
    for key, sub in b.items():
        out[key] = _merge2(out[key], sub) if key in out else sub
    return out


def merge(reads: Iterable[WardenReads]) -> WardenReads:
    """The union of several policies' reads."""
    out: WardenReads = NOTHING
    for r in reads:
        out = _merge2(out, r)
        if out is None:
            return None
    return out


def _take(value: Any, reads: Mapping[str, Any] | None) -> Any:
    if reads is None or type(value) is not dict:
        return value
    return {k: _take(value[k], sub) for k, sub in reads.items() if k in value}


def project(context: Mapping[str, Any], reads: WardenReads) -> Mapping[str, Any]:
    """``context`` with ``warden`` cut down to ``reads`` (the same object when nothing is cut)."""
    if reads is None or not isinstance(context, Mapping):
        return context  # a context that is not a record is refused by ``encode_context``
    full = context.get(_KEY)
    if full is None:
        return context
    out = dict(context)
    out[_KEY] = _take(full, reads)  # kept even when empty: ``context has warden`` holds
    return out
