"""Loading, validating and slicing a policy folder.

A policy folder holds every ``*.cedar`` file (read in sorted order), at most one schema
(``*.cedarschema`` in Cedar schema syntax, or ``*.cedarschema.json``) and an optional
``entities.json`` (a Cedar entity JSON list). ``load_policy_dir`` validates everything
before anything is activated and raises ``PolicyError`` naming the file at fault.

Policy ids. A policy's id is its ``@id("...")`` annotation, else ``<file stem>:<n>`` with
``n`` its index in the file (from 0). The Cedar policy set is rebuilt from the EST (JSON)
form under these ids, so Cedar's ``reasons`` are directly Warden policy ids.

Enforcement mode. ``@mode("monitor")`` on a ``forbid`` makes it monitor-only: it is
evaluated and reported, never enforced. Any other value, or none, means enforce. Monitor
only makes sense on forbids (a monitored permit would be a silent grant), so
``@mode("monitor")`` on a permit is a ``PolicyError``.

Slicing (DESIGN §5). Cedar evaluates every policy it is given, so at load time each
static policy is indexed by its principal, action and resource scope (``==`` entity,
``in`` entity or action list, ``is`` type, ``is … in``, or unscoped). For a request the
candidate set is the intersection, over the three scopes, of the policies whose scope can
match (the uid itself, its ancestors in the entity store plus the request's principal
parents, its type, or unscoped). Any policy outside that set has a scope that cannot match
the request, so it can neither permit nor forbid it: the sliced decision equals the
unsliced one (tested on randomised sets). Request shapes map to slices through an LRU bounded
by entries and by the policies the cached slices hold; equal candidate sets share one Cedar
handle. The full set is only built when needed (``slicing=False``, or a request every policy
can match). Templates are never linked from files, so they authorize nothing; they are kept
in the full set only.

Loading processes one file at a time and keeps each policy as its EST JSON text plus its
compacted scopes, so a large folder is never held as JSON objects all at once. Cedar's EST
conversion holds the GIL while it parses one file; other threads run between files, so a
large set hot-reloads best split over several files.

Entities. One handle is parsed from ``entities.json`` per load. Per request, the AuthZEN
``properties`` of the principal and resource become attributes, merged with the stored
entity (the store wins on conflict), and the request's principal parents are added. When a
request adds nothing the base handle is used as is; a new entity is added with
``with_added_json_str`` (only the delta is parsed); only a stored entity that gains
attributes or parents forces a rebuild. Deltas are cached (an LRU sized by the store, since
every delta handle holds a clone of it) so the same agent principal is parsed once.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import json
import re
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson

from warden.errors import PolicyError, PolicyEvaluationError

from . import _cedar, projection, recording, source
from . import schema as _schema
from . import validation as _validation
from .types import EntityRef

__all__ = [
    "ENTITY_CACHE_BYTES",
    "ENTITY_CACHE_SIZE",
    "MAX_NESTING",
    "SLICE_CACHE_POLICIES",
    "SLICE_CACHE_SIZE",
    "LoadedPolicySet",
    "PolicyInfo",
    "Slice",
    "check_type_name",
    "check_value",
    "encode_context",
    "load_policy_dir",
]

MAX_NESTING = 32
# Cache bounds. A cached slice costs about 4 KB per policy in it (Cedar's parsed form) and a
# cached entity delta about 200 bytes per stored entity (the base store is cloned), so the
# caches are bounded by what they hold as well as by entry count.
SLICE_CACHE_SIZE = 4096  # request shapes -> slice
SLICE_CACHE_POLICIES = 16384  # policies held by cached slices, summed
ENTITY_CACHE_SIZE = 4096  # entity deltas, at most
ENTITY_CACHE_BYTES = 32_000_000  # approximate memory held by cached entity deltas
_BYTES_PER_STORED_ENTITY = 220

Uid = tuple[str, str]

_I64_MIN = -(2**63)
_I64_MAX = 2**63 - 1
_EVAL_ERROR_PREFIX = "error while evaluating policy `"


# =========================================================================== values


class _ValueProblemError(Exception):
    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.path: list[str] = []


def _check(value: Any, depth: int) -> None:
    t = type(value)
    if t is str or t is bool:
        return
    if t is int:
        if _I64_MIN <= value <= _I64_MAX:
            return
        raise _ValueProblemError("integer outside the signed 64-bit range")
    if t is dict:
        if depth >= MAX_NESTING:
            raise _ValueProblemError(f"nested deeper than {MAX_NESTING} levels")
        depth += 1
        for key, item in value.items():
            if type(key) is not str:
                raise _ValueProblemError("record keys must be strings")
            ti = type(item)
            if ti is str or ti is bool or (ti is int and _I64_MIN <= item <= _I64_MAX):
                continue
            try:
                _check(item, depth)
            except _ValueProblemError as problem:
                problem.path.append(f".{key}")
                raise
        return
    if t is list or t is tuple:
        if depth >= MAX_NESTING:
            raise _ValueProblemError(f"nested deeper than {MAX_NESTING} levels")
        depth += 1
        for index, item in enumerate(value):
            ti = type(item)
            if ti is str or ti is bool or (ti is int and _I64_MIN <= item <= _I64_MAX):
                continue
            try:
                _check(item, depth)
            except _ValueProblemError as problem:
                problem.path.append(f"[{index}]")
                raise
        return
    if t is float:
        raise _ValueProblemError("floating-point numbers are not supported")
    if value is None:
        raise _ValueProblemError("null is not supported")
    if isinstance(value, str):  # str subclasses (StrEnum values)
        return
    if isinstance(value, Mapping):
        _check(dict(value), depth)
        return
    if isinstance(value, set | frozenset):
        _check(list(value), depth)
        return
    if isinstance(value, int) and not isinstance(value, bool):
        _check(int(value), depth)
        return
    raise _ValueProblemError("value cannot be represented in cedar")


def check_value(value: Any, where: str) -> None:
    """Check that a JSON value maps to a Cedar value.

    Cedar holds strings, 64-bit signed integers, booleans, sets (JSON lists) and records
    (JSON objects; ``__entity`` / ``__extn`` escapes pass through). Floats, nulls,
    out-of-range integers and nesting deeper than ``MAX_NESTING`` raise
    ``PolicyEvaluationError`` naming the offending path, e.g. ``context.arguments.amount``.
    """
    try:
        _check(value, 0)
    except _ValueProblemError as problem:
        path = where + "".join(reversed(problem.path))
        raise PolicyEvaluationError(
            f"unsupported value at `{path}`: {problem.problem}", detail={"field": path}
        ) from None


def _json_default(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError  # pragma: no cover - check_value rejects everything else first


# The reserved key the server fills itself (DESIGN §4): built from typed server state and already
# stripped from PEP input, so re-checking it on every decision would only cost time.
TRUSTED_CONTEXT_KEY = "warden"


def encode_context(context: Mapping[str, Any]) -> str:
    """Check a Cedar context (see ``check_value``) and encode it as a JSON string.

    Everything is checked except the server-built ``warden`` record; should it ever hold a value
    Cedar cannot take, Cedar rejects the request and the decision is a deny.
    """
    if type(context) is not dict:
        if not isinstance(context, Mapping):
            raise PolicyEvaluationError("the context must be a record", detail={"field": "context"})
        context = dict(context)
    if TRUSTED_CONTEXT_KEY in context:
        check_value({k: v for k, v in context.items() if k != TRUSTED_CONTEXT_KEY}, "context")
    else:
        check_value(context, "context")
    try:
        return orjson.dumps(context, default=_json_default).decode()
    except (TypeError, orjson.JSONEncodeError) as exc:  # pragma: no cover - check_value is stricter
        raise PolicyEvaluationError(f"cannot encode the context: {exc}") from exc


_IDENT = re.compile(r"[_A-Za-z][_A-Za-z0-9]*")
_RESERVED = frozenset({"true", "false", "if", "then", "else", "in", "is", "like", "has", "__cedar"})
_VALID_TYPES: set[str] = {"Action"}
_VALID_TYPES_MAX = 65536


def check_type_name(name: str) -> None:
    """Raise ``PolicyEvaluationError`` unless ``name`` is a Cedar entity type name.

    A type is one or more identifiers joined by ``::`` (``Agent``, ``Acme::Doc``); Cedar's
    reserved words are not identifiers.
    """
    if type(name) is not str or not name:
        raise PolicyEvaluationError("an entity type must be a non-empty string")
    if name in _VALID_TYPES:
        return
    for part in name.split("::"):
        if not _IDENT.fullmatch(part) or part in _RESERVED:
            raise PolicyEvaluationError(
                f"`{name}` is not a valid cedar entity type name", detail={"type": name}
            )
    if len(_VALID_TYPES) < _VALID_TYPES_MAX:
        _VALID_TYPES.add(name)


# =========================================================================== policies


@dataclass(frozen=True, slots=True)
class PolicyInfo:
    """What Warden knows about one policy of the set."""

    id: str
    effect: str  # "permit" | "forbid"
    annotations: Mapping[str, str]
    source: str  # file name inside the policy folder
    index: int  # position in its file, from 0
    mode: str = "enforce"  # "enforce" | "monitor"
    template: bool = False
    line: int = 1  # where the policy starts in its file
    reads: frozenset[str] = frozenset()  # context paths it reads (``recording.context_reads``)
    warden_reads: projection.WardenReads = None  # of context.warden; None: all (projection.py)

    @property
    def monitor(self) -> bool:
        return self.mode == "monitor"


@dataclass(slots=True, eq=False, weakref_slot=True)
class Slice:
    """A subset of the policy set, with its Cedar handle."""

    ids: frozenset[str]
    policy_set: _cedar.PolicySetHandle
    monitor_ids: frozenset[str]
    owner: LoadedPolicySet
    warden: projection.WardenReads = None  # what its policies read of context.warden
    _without_monitor: Slice | None = None

    def without_monitor(self) -> Slice:
        """The same slice with every monitor-mode forbid removed (cached)."""
        if self._without_monitor is None:
            self._without_monitor = self.owner.slice_of(self.ids - self.monitor_ids)
        return self._without_monitor


class _SliceCache:
    """LRU of request shape -> slice, bounded by entries and by policies held.

    Reads take no lock (single dict operations are atomic under the GIL); inserts and
    evictions do.
    """

    def __init__(self, max_entries: int, max_policies: int) -> None:
        self._data: OrderedDict[Hashable, Slice] = OrderedDict()
        self._max_entries = max_entries
        self._max_policies = max_policies
        self._policies = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Slice | None:
        found = self._data.get(key)
        if found is not None:
            try:
                self._data.move_to_end(key)
            except KeyError:  # pragma: no cover - evicted by another thread meanwhile
                pass
        return found

    def put(self, key: Hashable, value: Slice) -> Slice:
        with self._lock:
            present = self._data.get(key)
            if present is not None:
                return present
            self._data[key] = value
            self._policies += len(value.ids) + 1
            while len(self._data) > 1 and (
                len(self._data) > self._max_entries or self._policies > self._max_policies
            ):
                _, old = self._data.popitem(last=False)
                self._policies -= len(old.ids) + 1
        return value

    def __len__(self) -> int:
        return len(self._data)


# A policy scope constraint, compacted at load time:
#   ("any",) | ("eq", uid) | ("in", (uid, ...)) | ("is", entity type)
# `is T in E` is indexed as ("in", (E,)): E decides membership, Cedar checks the type.
Scope = tuple[Any, ...]
_ANY: Scope = ("any",)


def _scope_key(constraint: Any) -> Scope:
    if not isinstance(constraint, Mapping):
        return _ANY
    op = constraint.get("op")
    if op == "==" and isinstance(constraint.get("entity"), Mapping):
        return ("eq", _uid(constraint["entity"]))
    if op == "in" and isinstance(constraint.get("entity"), Mapping):
        return ("in", (_uid(constraint["entity"]),))
    if op == "in" and isinstance(constraint.get("entities"), list):
        return ("in", tuple(_uid(e) for e in constraint["entities"]))
    if op == "is":
        inner = constraint.get("in")
        if isinstance(inner, Mapping) and isinstance(inner.get("entity"), Mapping):
            return ("in", (_uid(inner["entity"]),))
        if inner is None and isinstance(constraint.get("entity_type"), str):
            return ("is", constraint["entity_type"])
    return _ANY  # "All", template slots, or anything unknown: may match anything


class _ScopeIndex:
    """Policies by one scope (principal, action or resource)."""

    __slots__ = ("any", "eq", "is_", "member")

    def __init__(self) -> None:
        self.any: set[int] = set()
        self.eq: dict[Uid, set[int]] = {}
        self.member: dict[Uid, set[int]] = {}
        self.is_: dict[str, set[int]] = {}

    def add(self, n: int, scope: Scope) -> None:
        kind = scope[0]
        if kind == "eq":
            self.eq.setdefault(scope[1], set()).add(n)
        elif kind == "in":
            for uid in scope[1]:
                self.member.setdefault(uid, set()).add(n)
        elif kind == "is":
            self.is_.setdefault(scope[1], set()).add(n)
        else:
            self.any.add(n)

    def candidates(self, uid: Uid, ancestors: Iterable[Uid]) -> set[int]:
        found = set(self.any)
        hit = self.eq.get(uid)
        if hit:
            found |= hit
        hit = self.member.get(uid)
        if hit:
            found |= hit
        for ancestor in ancestors:
            hit = self.member.get(ancestor)
            if hit:
                found |= hit
        hit = self.is_.get(uid[0])
        if hit:
            found |= hit
        return found


def _uid(entity: Mapping[str, Any]) -> Uid:
    return (str(entity["type"]), str(entity["id"]))


@dataclass(frozen=True, slots=True)
class _StoreEntity:
    attrs: Mapping[str, Any]
    attr_keys: frozenset[str]
    ancestors: frozenset[Uid]


class LoadedPolicySet:
    """A validated policy folder, ready to evaluate. Immutable once built (caches aside).

    Attributes: ``path``, ``revision`` (sha256 hex of the folder's file names and contents),
    ``files``, ``policies`` (``PolicyInfo`` by id, in load order), ``policy_ids``,
    ``schema`` (handle or ``None``) and ``entities`` (the base entity handle).
    """

    def __init__(
        self,
        *,
        path: Path,
        revision: str,
        files: tuple[str, ...],
        policies: dict[str, PolicyInfo],
        static_json: dict[str, str],
        template_json: dict[str, str],
        scopes: dict[str, tuple[Scope, Scope, Scope]],
        schema: _cedar.SchemaHandle | None,
        entities: _cedar.EntitiesHandle,
        sources: Mapping[str, str] | None = None,
        schema_text: str = "",
        schema_notes: tuple[str, ...] = (),
    ) -> None:
        self.path = path
        self.sources: Mapping[str, str] = sources or MappingProxyType({})
        self.schema_text = schema_text  # the schema the set was validated against
        self.schema_notes = schema_notes  # names no schema declared (declared for it)
        self.revision = revision
        self.files = files
        self.policies: Mapping[str, PolicyInfo] = MappingProxyType(policies)
        self.policy_ids: tuple[str, ...] = tuple(policies)
        self.schema = schema
        self.entities = entities

        self._est_json = static_json
        self._template_json = template_json
        self._static_ids: tuple[str, ...] = tuple(static_json)
        self._forbids = frozenset(p.id for p in policies.values() if p.effect == "forbid")
        self._monitor = frozenset(p.id for p in policies.values() if p.monitor)

        # Entity store, as Cedar sees it (schema action entities included).
        self._store_list = _cedar.entities_to_list(entities)
        parents: dict[Uid, list[Uid]] = {}
        attrs: dict[Uid, Mapping[str, Any]] = {}
        self._by_type: dict[str, list[str]] = {}
        for entity in self._store_list:
            uid = _uid(entity["uid"])
            attrs[uid] = entity.get("attrs") or {}
            parents[uid] = [_uid(p) for p in entity.get("parents") or ()]
            self._by_type.setdefault(uid[0], []).append(uid[1])
        for ids in self._by_type.values():
            ids.sort()  # Cedar renders entities in hash order: make searches deterministic
        closure = _transitive_closure(parents)
        self._store: dict[Uid, _StoreEntity] = {
            uid: _StoreEntity(attrs[uid], frozenset(attrs[uid]), closure[uid]) for uid in attrs
        }

        # Scope indexes over static policies (by position in _static_ids).
        self._principal = _ScopeIndex()
        self._action = _ScopeIndex()
        self._resource = _ScopeIndex()
        actions: dict[str, None] = {}
        for n, pid in enumerate(self._static_ids):
            principal, action, resource = scopes[pid]
            self._principal.add(n, principal)
            self._action.add(n, action)
            self._resource.add(n, resource)
        for pid in self.policy_ids:  # templates too
            action = scopes[pid][1]
            named = (action[1],) if action[0] == "eq" else action[1] if action[0] == "in" else ()
            for uid in named:
                if uid[0] == "Action":
                    actions[uid[1]] = None
        for action_id in self._by_type.get("Action", ()):
            actions.setdefault(action_id, None)
        self._action_names = tuple(actions)

        self._all_ids = frozenset(self._static_ids)
        self._full: Slice | None = None
        self._full_lock = threading.Lock()
        self._slices = _SliceCache(SLICE_CACHE_SIZE, SLICE_CACHE_POLICIES)
        self._by_ids: weakref.WeakValueDictionary[frozenset[str], Slice] = (
            weakref.WeakValueDictionary()
        )
        per_delta = _BYTES_PER_STORED_ENTITY * (len(self._store_list) + 8)
        self.entity_cache_size = max(16, min(ENTITY_CACHE_SIZE, ENTITY_CACHE_BYTES // per_delta))
        self._delta_entities: Callable[[bytes], _cedar.EntitiesHandle] = functools.lru_cache(
            maxsize=self.entity_cache_size
        )(self._build_delta)

    @property
    def full(self) -> Slice:
        """The whole set (static policies and templates), built on first use.

        Slicing never needs it unless every policy is a candidate; ``slicing=False`` PDPs
        evaluate against it. Built lazily so that a large set is not held twice.
        """
        full = self._full
        if full is None:
            with self._full_lock:
                full = self._full
                if full is None:
                    text = _est_document(self._static_ids, self._est_json, self._template_json)
                    try:
                        handle = _cedar.policy_set_from_est_json(text, release_gil=True)
                    except _cedar.CedarError as exc:  # pragma: no cover - every policy parsed
                        raise PolicyEvaluationError(f"cannot build the policy set: {exc}") from exc
                    reads = self._warden_reads(self.policy_ids)  # templates too: be generous
                    full = Slice(self._all_ids, handle, self._all_ids & self._monitor, self, reads)
                    self._full = full
        return full

    # ------------------------------------------------------------------ queries

    @property
    def short_revision(self) -> str:
        return self.revision[:16]

    def mentions(self, word: str) -> bool:
        """Does any policy file of the set contain ``word``?"""
        return any(word in text for name, text in self.sources.items() if name.endswith(".cedar"))

    def is_forbid(self, policy_id: str) -> bool:
        return policy_id in self._forbids

    def is_monitor(self, policy_id: str) -> bool:
        return policy_id in self._monitor

    def annotations_of(self, policy_ids: Iterable[str]) -> dict[str, Mapping[str, str]]:
        policies = self.policies
        return {pid: policies[pid].annotations for pid in policy_ids if pid in policies}

    def entity_ids(self, entity_type: str) -> tuple[str, ...]:
        """Ids of the stored entities of one type, sorted (empty if the type is unknown)."""
        return tuple(self._by_type.get(entity_type, ()))

    def has_entity(self, ref: EntityRef) -> bool:
        return (ref.type, ref.id) in self._store

    def action_names(self) -> tuple[str, ...]:
        """Candidate actions: ``Action`` entities in the store and actions in policy scopes."""
        return self._action_names

    def ancestors(self, ref: EntityRef) -> frozenset[Uid]:
        entity = self._store.get((ref.type, ref.id))
        return entity.ancestors if entity is not None else frozenset()

    def errored_policy(self, message: str) -> str | None:
        """The id of the policy a Cedar evaluation error is about, or ``None``."""
        if not message.startswith(_EVAL_ERROR_PREFIX):
            return None
        # Policy ids cannot contain a backtick (checked at load), so the id ends at the first.
        candidate = message[len(_EVAL_ERROR_PREFIX) :].split("`", 1)[0]
        return candidate if candidate in self.policies else None

    # ------------------------------------------------------------------ slicing

    def slice_for(
        self,
        principal_type: str,
        principal_id: str,
        principal_parents: tuple[EntityRef, ...],
        action: str,
        resource_type: str,
        resource_id: str,
    ) -> Slice:
        """The slice that can decide a request of this shape (cached)."""
        key = (principal_type, principal_id, principal_parents, action, resource_type, resource_id)
        found = self._slices.get(key)
        if found is None:
            found = self._slices.put(key, self._compute_slice(*key))
        return found

    def slice_of(self, ids: frozenset[str]) -> Slice:
        """The slice made of exactly ``ids`` (shared while any cache entry holds it)."""
        if ids == self._all_ids:
            return self.full
        found = self._by_ids.get(ids)
        if found is None:
            found = self._build_slice(ids)
            self._by_ids[ids] = found
        return found

    def _compute_slice(
        self,
        principal_type: str,
        principal_id: str,
        principal_parents: tuple[EntityRef, ...],
        action: str,
        resource_type: str,
        resource_id: str,
    ) -> Slice:
        p_uid = (principal_type, principal_id)
        r_uid = (resource_type, resource_id)
        extra: set[Uid] = set()
        for parent in principal_parents:
            puid = (parent.type, parent.id)
            extra.add(puid)
            stored = self._store.get(puid)
            if stored is not None:
                extra |= stored.ancestors
        p_anc = self._ancestor_set(p_uid) | extra
        r_anc = self._ancestor_set(r_uid) | (extra if r_uid == p_uid else set())
        a_uid = ("Action", action)
        found = self._principal.candidates(p_uid, p_anc)
        if found:
            found &= self._action.candidates(a_uid, self._ancestor_set(a_uid))
        if found:
            found &= self._resource.candidates(r_uid, r_anc)
        ids = self._static_ids
        return self.slice_of(frozenset(ids[n] for n in found))

    def _warden_reads(self, ids: Iterable[str]) -> projection.WardenReads:
        policies = self.policies
        return projection.merge(policies[pid].warden_reads for pid in ids)

    def _ancestor_set(self, uid: Uid) -> frozenset[Uid]:
        stored = self._store.get(uid)
        return stored.ancestors if stored is not None else frozenset()

    def _build_slice(self, ids: frozenset[str]) -> Slice:
        ordered = [pid for pid in self._static_ids if pid in ids] if len(ids) > 1 else list(ids)
        text = _est_document(ordered, self._est_json, {})
        try:
            handle = _cedar.policy_set_from_est_json(text, release_gil=len(ids) > 256)
        except _cedar.CedarError as exc:  # pragma: no cover - every policy parsed on its own
            raise PolicyEvaluationError(f"cannot build a policy slice: {exc}") from exc
        return Slice(ids, handle, ids & self._monitor, self, self._warden_reads(ordered))

    # ------------------------------------------------------------------ entities

    def entities_for(
        self,
        principal: EntityRef,
        principal_attrs: Mapping[str, Any] | None,
        principal_parents: tuple[EntityRef, ...],
        resource: EntityRef,
        resource_attrs: Mapping[str, Any] | None,
    ) -> _cedar.EntitiesHandle:
        """The entities to evaluate one request with (see the module docstring)."""
        need_p = bool(principal_attrs or principal_parents) and self._adds(
            principal, principal_attrs, principal_parents
        )
        need_r = bool(resource_attrs) and self._adds(resource, resource_attrs, ())
        if not need_p and not need_r:
            return self.entities
        key_obj = (
            (principal.type, principal.id, principal_attrs or {}, principal_parents)
            if need_p
            else None,
            (resource.type, resource.id, resource_attrs or {}) if need_r else None,
        )
        try:
            key = orjson.dumps(key_obj, default=_json_default)
        except (TypeError, orjson.JSONEncodeError):
            if need_p:
                check_value(principal_attrs, "principal")
            if need_r:
                check_value(resource_attrs, "resource")
            raise PolicyEvaluationError(  # pragma: no cover - check_value is stricter
                "entity attributes cannot be represented in cedar"
            ) from None
        return self._delta_entities(key)

    def _adds(
        self, ref: EntityRef, attrs: Mapping[str, Any] | None, parents: tuple[EntityRef, ...]
    ) -> bool:
        stored = self._store.get((ref.type, ref.id))
        if stored is None:
            return True
        if attrs and not stored.attr_keys.issuperset(attrs.keys()):
            return True
        return any((p.type, p.id) not in stored.ancestors for p in parents)

    def _build_delta(self, key: bytes) -> _cedar.EntitiesHandle:
        try:
            principal_part, resource_part = orjson.loads(key)
        except orjson.JSONDecodeError as exc:  # pragma: no cover - orjson wrote it
            raise PolicyEvaluationError("entity attributes are nested too deeply") from exc
        merged: dict[Uid, tuple[dict[str, Any], set[Uid]]] = {}
        if resource_part is not None:
            rtype, rid, rattrs = resource_part
            check_value(rattrs, "resource")
            merged[(rtype, rid)] = (dict(rattrs), set())
        if principal_part is not None:
            ptype, pid, pattrs, pparents = principal_part
            check_value(pattrs, "principal")
            attrs, ancestors = merged.setdefault((ptype, pid), ({}, set()))
            attrs.update(pattrs)  # the principal's properties win over the resource's
            for parent in pparents:
                check_type_name(parent["type"])
                puid = (str(parent["type"]), str(parent["id"]))
                ancestors.add(puid)
                ancestors |= self._ancestor_set(puid)
        replaced: set[Uid] = set()
        new: list[dict[str, Any]] = []
        for uid, (attrs, ancestors) in merged.items():
            check_type_name(uid[0])
            stored = self._store.get(uid)
            if stored is not None:
                replaced.add(uid)
                attrs.update(stored.attrs)  # the store wins on conflict
                ancestors |= stored.ancestors
            new.append(
                {
                    "uid": {"type": uid[0], "id": uid[1]},
                    "attrs": attrs,
                    "parents": [{"type": t, "id": i} for t, i in sorted(ancestors)],
                }
            )
        try:
            if not replaced:
                return _cedar.entities_with_added(self.entities, json.dumps(new))
            kept = [e for e in self._store_list if _uid(e["uid"]) not in replaced]
            return _cedar.entities_from_json(json.dumps(kept + new))
        except _cedar.CedarError as exc:
            raise PolicyEvaluationError(f"cannot build the request entities: {exc}") from exc


def _est_document(ids: Iterable[str], est: Mapping[str, str], templates: Mapping[str, str]) -> str:
    """A Cedar policy-set JSON document from per-policy EST JSON texts."""
    static = ",".join(f"{json.dumps(pid)}:{est[pid]}" for pid in ids)
    tpl = ",".join(f"{json.dumps(pid)}:{text}" for pid, text in templates.items())
    return '{"staticPolicies":{' + static + '},"templates":{' + tpl + '},"templateLinks":[]}'


def _transitive_closure(parents: Mapping[Uid, list[Uid]]) -> dict[Uid, frozenset[Uid]]:
    closure: dict[Uid, frozenset[Uid]] = {}

    def visit(uid: Uid, stack: set[Uid]) -> frozenset[Uid]:
        done = closure.get(uid)
        if done is not None:
            return done
        stack.add(uid)
        found: set[Uid] = set()
        for parent in parents.get(uid, ()):
            found.add(parent)
            if parent not in stack:
                found |= visit(parent, stack)
        stack.discard(uid)
        result = frozenset(found)
        closure[uid] = result
        return result

    for uid in parents:
        if uid not in closure:
            # iterative deepening is unnecessary: Cedar rejects cycles, depth is the hierarchy
            visit(uid, set())
    return closure


# =========================================================================== loading


_SCHEMA_SUFFIXES = (".cedarschema", ".cedarschema.json")
MAX_PROBLEMS = 100  # a folder with more reports the first hundred


def is_policy_file(name: str) -> bool:
    """Does a file of this name belong to a policy set (policies, schema, entities)?"""
    return name.endswith((".cedar", *_SCHEMA_SUFFIXES)) or name == "entities.json"


def read_policy_dir(path: Path | str) -> dict[str, bytes]:
    """The policy files of a folder, by name (sorted); ``PolicyError`` if it is not one."""
    folder = Path(path)
    if not folder.is_dir():
        raise PolicyError(f"policy folder `{folder}` does not exist or is not a folder")
    files: dict[str, bytes] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and is_policy_file(p.name):
            try:
                files[p.name] = p.read_bytes()
            except OSError as exc:  # pragma: no cover - races with deletion, permissions
                raise PolicyError(f"`{p.name}`: cannot read the file: {exc.strerror}") from exc
    return files


def revision_of(files: Mapping[str, bytes]) -> str:
    """sha256 hex over the names and contents of a set's files (schema, policies, entities)."""
    digest = hashlib.sha256()
    for name in _load_order(files):
        digest.update(name.encode() + b"\0" + files[name] + b"\0")
    return digest.hexdigest()


def _load_order(files: Mapping[str, bytes]) -> list[str]:
    names = sorted(files)
    return [
        *(n for n in names if n.endswith(_SCHEMA_SUFFIXES)),
        *(n for n in names if n.endswith(".cedar")),
        *(n for n in names if n == "entities.json"),
    ]


def _policy_index(parser_id: str) -> int:
    # Cedar names policies of a parse `policy0`, `policy1`, … in source order.
    return int(parser_id.removeprefix("policy"))


class _Problems:
    """Every problem found while loading, each with its file, line and column."""

    def __init__(self) -> None:
        self.items: list[source.PolicyProblem] = []

    def add(
        self,
        file: str,
        text: str,
        offset: int,
        message: str,
        *,
        width: int = 1,
        policy: str | None = None,
        kind: str = "parse",
    ) -> None:
        line, column = source.position(text, offset)
        snip = source.snippet(text, offset, width)
        self.items.append(source.PolicyProblem(file, line, column, snip, message, policy, kind))

    def at_statement(
        self,
        file: str,
        text: str,
        stmt: source.Statement | None,
        message: str,
        *,
        policy: str | None = None,
        kind: str = "parse",
        about: str | None = None,
    ) -> None:
        """A problem with a statement, pointed at what ``about`` (default: message) names."""
        if stmt is None:
            self.add(file, text, 0, message, policy=policy, kind=kind)
            return
        tok = source.locate_in_statement(text, stmt, message if about is None else about)
        self.add(file, text, tok.start, message, width=len(tok.text), policy=policy, kind=kind)

    def raise_if_any(self) -> None:
        if not self.items:
            return
        first = self.items[0]
        more = f" (and {len(self.items) - 1} more)" if len(self.items) > 1 else ""
        raise PolicyError(
            f"{first.headline} (line {first.line}, column {first.column}){more}",
            detail={"errors": [p.to_dict() for p in self.items[:MAX_PROBLEMS]]},
        )


def _parse_message(text: str) -> str | None:
    try:
        _cedar.policies_to_est(text)
    except _cedar.CedarError as exc:
        return str(exc)
    return None


def load_policy_dir(path: Path | str) -> LoadedPolicySet:
    """Load and validate a policy folder; raise ``PolicyError`` on any problem."""
    folder = Path(path)
    return load_policy_files(read_policy_dir(folder), origin=folder)


def load_policy_files(
    files: Mapping[str, bytes], *, origin: Path | str = "<bundle>"
) -> LoadedPolicySet:
    """Load and validate a policy set given as ``{file name: contents}``.

    Everything is checked before anything is returned; every problem found is reported in
    ``PolicyError.detail["errors"]`` (file, line, column, snippet, message, policy), and the
    message names the first. Policies are validated against Warden's schema plus the
    folder's own (see ``schema.py``).
    """
    folder = Path(origin)
    problems = _Problems()
    names = _load_order(files)
    for name in names:
        if "/" in name or "\\" in name or name.startswith("."):
            raise PolicyError(f"`{name}`: not a plain policy file name")
    schema_files = [n for n in names if n.endswith(_SCHEMA_SUFFIXES)]
    cedar_files = [n for n in names if n.endswith(".cedar")]
    if len(schema_files) > 1:
        listed = ", ".join(f"`{n}`" for n in schema_files)
        raise PolicyError(f"policy folder `{folder}` has more than one schema file: {listed}")

    texts: dict[str, str] = {}
    for name in names:
        data = files[name]
        try:
            texts[name] = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            prefix = data[: exc.start].decode("utf-8", errors="replace")
            problems.add(name, prefix, len(prefix), "the file is not valid UTF-8", kind="file")
            texts[name] = ""
    if problems.items:
        first = problems.items[0]
        raise PolicyError(
            f"`{first.file}`: the file is not valid UTF-8",
            detail={"errors": [p.to_dict() for p in problems.items]},
        )

    policies: dict[str, PolicyInfo] = {}
    static_json: dict[str, str] = {}
    template_json: dict[str, str] = {}
    scopes: dict[str, tuple[Scope, Scope, Scope]] = {}
    named_types: set[str] = set()
    named_actions: set[str] = set()
    # equal reads share one object: 10k policies mostly read the same few fields
    shared_reads: dict[bytes, projection.WardenReads] = {}

    def interned(reads: projection.WardenReads) -> projection.WardenReads:
        return shared_reads.setdefault(
            orjson.dumps(reads, default=dict, option=orjson.OPT_SORT_KEYS), reads
        )

    # per file: (text, statements, parser id -> policy id, statement -> actions it needs)
    parsed: list[
        tuple[str, str, list[source.Statement], dict[str, str], dict[int, _validation.ActionNeeds]]
    ] = []
    for name in cedar_files:  # one file at a time: only its EST is ever held as objects
        text = texts[name]
        try:
            est = _cedar.policies_to_est(text)
        except _cedar.CedarError as exc:
            problems.items.extend(source.locate_parse_errors(name, text, _parse_message, str(exc)))
            continue
        stmts = source.statements(source.tokenize(text))
        # a policy's line by bisection: counting newlines up to each policy is quadratic
        newlines = [m.start() for m in re.finditer("\n", text)]
        ids: dict[str, str] = {}
        needs: dict[int, _validation.ActionNeeds] = {}
        bodies = [
            *((pid, body, False) for pid, body in (est.get("staticPolicies") or {}).items()),
            *((pid, body, True) for pid, body in (est.get("templates") or {}).items()),
        ]
        bodies.sort(key=lambda item: _policy_index(item[0]))
        stem = name.removesuffix(".cedar")
        for parser_id, body, is_template in bodies:
            index = _policy_index(parser_id)
            stmt = stmts[index] if index < len(stmts) else None
            types, actions = _schema.names_in_est(body)
            needs[index] = _validation.needs_of(body, actions)
            annotations = {
                str(k): "" if v is None else str(v)
                for k, v in (body.get("annotations") or {}).items()
            }
            if "id" in annotations:
                policy_id = annotations["id"]
                if not policy_id:
                    problems.at_statement(
                        name, text, stmt, f"policy {index} has an empty `@id`", kind="policy"
                    )
                    continue
            else:
                policy_id = f"{stem}:{index}"
            if "`" in policy_id:
                # Cedar names a failing policy as `id` in its error messages; a backtick in
                # an id would make "which forbid errored?" ambiguous (see pdp.py).
                problems.at_statement(
                    name,
                    text,
                    stmt,
                    f"policy {index}: policy ids cannot contain a backtick",
                    kind="policy",
                )
                continue
            if policy_id in policies:
                other = policies[policy_id].source
                problems.at_statement(
                    name,
                    text,
                    stmt,
                    f"duplicate policy id `{policy_id}` (already used in `{other}`)",
                    policy=policy_id,
                    kind="policy",
                )
                continue
            effect = str(body.get("effect"))
            monitor = annotations.get("mode") == "monitor"
            if monitor and effect != "forbid":
                problems.at_statement(
                    name,
                    text,
                    stmt,
                    f'policy `{policy_id}`: `@mode("monitor")` is only allowed on forbid policies',
                    policy=policy_id,
                    kind="policy",
                )
                continue
            ids[parser_id] = policy_id
            policies[policy_id] = PolicyInfo(
                id=policy_id,
                effect=effect,
                annotations=MappingProxyType(annotations),
                source=name,
                index=index,
                mode="monitor" if monitor else "enforce",
                template=is_template,
                line=bisect.bisect_left(newlines, stmt.start) + 1 if stmt is not None else 1,
                reads=frozenset(recording.context_reads(body)),
                warden_reads=interned(projection.warden_reads(body)),
            )
            (template_json if is_template else static_json)[policy_id] = orjson.dumps(body).decode()
            scopes[policy_id] = (
                _scope_key(body.get("principal")),
                _scope_key(body.get("action")),
                _scope_key(body.get("resource")),
            )
            named_types |= types
            named_actions |= actions
        del est, bodies
        parsed.append((name, text, stmts, ids, needs))

    user = (schema_files[0], texts[schema_files[0]]) if schema_files else None
    schema, entity_schema, eff = _build_schema(user, named_types, named_actions, problems)
    if schema is not None:
        # without a user schema only what Warden's model types is checked (see schema.py)
        relevant = _schema.warden_relevant if user is None else None
        schema_for = _schema_for_actions(named_types) if user is None else None
        if eff is not None and len(eff.auto_actions) <= _validation.SPLIT_ABOVE:
            schema_for = None  # few enough actions: one call per file costs less
        declared = named_actions | _schema.mapped_action_names()
        for name, text, stmts, ids, needs in parsed:
            # a policy rejected above may name actions the full schema does not declare: Cedar
            # then checks it under every action, so it is validated against the full schema
            needs = {i: None if n is None or n - declared else n for i, n in needs.items()}
            _validate_file(name, text, stmts, ids, needs, schema, problems, relevant, schema_for)
    problems.raise_if_any()

    entities = _load_entities(texts.get("entities.json"), entity_schema)
    return LoadedPolicySet(
        path=folder,
        revision=revision_of(files),
        files=tuple(names),
        policies=policies,
        static_json=static_json,
        template_json=template_json,
        scopes=scopes,
        schema=schema,
        entities=entities,
        sources=MappingProxyType({n: texts[n] for n in names}),
        schema_text=eff.text if eff is not None else "",
        schema_notes=_notes(eff),
    )


def _notes(eff: _schema.EffectiveSchema | None) -> tuple[str, ...]:
    if eff is None:
        return ()
    from .model import OTHER_ACTION, OTHER_TYPE

    types = [t for t in eff.auto_entities if t != OTHER_TYPE]
    actions = [a for a in eff.auto_actions if a != OTHER_ACTION]
    notes = []
    if types:
        notes.append("entity types no schema declares (untyped): " + ", ".join(types))
    if actions:
        notes.append(
            "actions no schema declares (untyped context.arguments): " + ", ".join(actions)
        )
    return tuple(notes)


def _build_schema(
    user: tuple[str, str] | None,
    named_types: set[str],
    named_actions: set[str],
    problems: _Problems,
) -> tuple[_cedar.SchemaHandle | None, _cedar.SchemaHandle | None, _schema.EffectiveSchema | None]:
    """(schema policies validate against, schema entities validate against, its source)."""
    try:
        eff = _schema.effective_schema(user, named_types, named_actions)
    except ValueError as exc:
        assert user is not None
        problems.add(user[0], user[1], 0, f"invalid schema: {exc}", kind="schema")
        return None, None, None
    try:
        handle = (_cedar.schema_from_json if eff.is_json else _cedar.schema_from_text)(eff.text)
    except _cedar.CedarError as exc:
        if user is None:  # pragma: no cover - Warden's own schema always parses (tested)
            raise PolicyError(f"Warden's generated schema does not parse: {exc}") from exc
        name, text = user
        offset = _find_named(text, str(exc))
        problems.add(name, text, offset, f"invalid schema: {exc}", kind="schema")
        return None, None, None
    if user is None:
        return handle, None, eff  # entities are not checked against auto-declared types
    # Entities validate against the types only: Warden's actions are not store entities.
    skip_actions = _schema.Declared(actions=frozenset(_schema.mapped_action_names()))
    ent = _schema.effective_schema(user, skip=skip_actions)
    try:
        ent_handle = (_cedar.schema_from_json if ent.is_json else _cedar.schema_from_text)(ent.text)
    except _cedar.CedarError:  # pragma: no cover - a subset of a schema that parsed
        ent_handle = handle
    return handle, ent_handle, eff


def _find_named(text: str, message: str) -> int:
    """Offset of the first backticked name of a message in ``text`` (0 if none is found)."""
    for name in source.names_in(message):
        last = name.split("::")[-1].strip('"')
        found = re.search(rf"(?<![\w]){re.escape(last)}(?![\w])", text)
        if found:
            return found.start()
    return 0


def _schema_for_actions(named_types: set[str]) -> Callable[[frozenset[str]], _cedar.SchemaHandle]:
    """Warden's schema (no user schema) declaring every entity type the folder's does but only
    the given actions: what a batch of policies naming only those is validated against
    (ADR 0144). Warden's own actions the batch does not name are left out too."""
    auto_e = _schema.effective_schema(None, named_types).auto_entities
    mapped = _schema.mapped_action_names()

    def schema_for(actions: frozenset[str]) -> _cedar.SchemaHandle:
        text = _schema.render_text(
            skip=_schema.Declared(actions=mapped - actions),
            auto_entities=auto_e,
            auto_actions=actions - mapped,
        )
        return _cedar.schema_from_text(text)

    return schema_for


def _validate_file(
    name: str,
    text: str,
    stmts: list[source.Statement],
    ids: Mapping[str, str],
    needs: Mapping[int, _validation.ActionNeeds],
    schema: _cedar.SchemaHandle,
    problems: _Problems,
    relevant: Callable[[list[tuple[str, str]]], list[tuple[str, str]]] | None,
    schema_for: Callable[[frozenset[str]], _cedar.SchemaHandle] | None,
) -> None:
    try:
        found = None
        if schema_for is not None:
            found = _validation.validate_by_actions(text, stmts, needs, schema, schema_for)
        if found is None:
            found = _cedar.validate_policies(text, schema)
    except _cedar.CedarError as exc:  # pragma: no cover - text parsed above
        problems.add(name, text, 0, f"cannot validate policies: {exc}", kind="validation")
        return
    if relevant is not None:
        found = relevant(found)
    seen: set[tuple[str, str]] = set()
    for parser_id, message in found:
        # Cedar repeats an error per request environment (each action the policy may apply
        # to): report it once, without the environment
        key = (parser_id, re.sub(r" for Action::\"[^\"]*\"", "", message))
        if key in seen:
            continue
        seen.add(key)
        message = key[1]
        policy_id = ids.get(parser_id, parser_id)
        message = message.replace(f"for policy `{parser_id}`, ", "")
        message = message.replace(f"`{parser_id}`", f"`{policy_id}`")
        index = _policy_index(parser_id) if parser_id.startswith("policy") else -1
        stmt = stmts[index] if 0 <= index < len(stmts) else None
        problems.at_statement(
            name,
            text,
            stmt,
            f"policy `{policy_id}` does not validate against the schema: {message}",
            policy=policy_id,
            kind="validation",
            about=message,
        )


def _load_entities(text: str | None, schema: _cedar.SchemaHandle | None) -> _cedar.EntitiesHandle:
    name = "entities.json"
    if text is None:
        return _cedar.entities_from_json("[]", schema)
    problems = _Problems()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        problems.add(name, text, exc.pos, f"invalid JSON: {exc}", kind="entities")
        problems.raise_if_any()
    if not isinstance(data, list):
        problems.add(name, text, 0, "expected a list of cedar entities", kind="entities")
        problems.raise_if_any()
    try:
        return _cedar.entities_from_json(text, schema)
    except _cedar.CedarError as exc:
        culprit, offset = _first_bad_entity(data, schema, text)
        where = f" (entity `{culprit}`)" if culprit else ""
        problems.add(name, text, offset, f"invalid entities{where}: {exc}", kind="entities")
        problems.raise_if_any()
        raise  # pragma: no cover - raise_if_any raised


def _first_bad_entity(
    data: list[Any], schema: _cedar.SchemaHandle | None, text: str
) -> tuple[str | None, int]:
    """The first entity that fails on its own (to name it in the error) and its offset."""
    for entity in data:
        try:
            _cedar.entities_from_json(json.dumps([entity]), schema)
        except _cedar.CedarError:
            uid = entity.get("uid") if isinstance(entity, dict) else None
            if isinstance(uid, dict) and "type" in uid and "id" in uid:
                ref = EntityRef(str(uid["type"]), str(uid["id"]))
                found = text.find(json.dumps(str(uid["id"])))
                return str(ref), max(found, 0)
            return None, 0
    return None, 0
