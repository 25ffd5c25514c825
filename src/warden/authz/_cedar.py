"""The only module in Warden that imports ``cedarpy``.

Everything cedarpy can do for us goes through the small, typed surface below, so the rest
of the project never sees a cedarpy object or exception:

* handles (``PolicySetHandle``, ``EntitiesHandle``, ``SchemaHandle``) are opaque;
* every cedarpy failure is re-raised as ``CedarError`` with a one-line message (callers
  translate it to ``PolicyError`` / ``PolicyEvaluationError`` and keep it as ``__cause__``);
* requests always carry entity uids in dict form (``{"type", "id"}``) and the context as a
  pre-encoded JSON string, never interpolated Cedar text.

Hot path. ``cedarpy.is_authorized`` is a thin Python wrapper around the Rust
``_internal.is_authorized_batch``: it copies the request, ``json.dumps`` the context and
``json.loads`` the answer into an ``AuthzResult``. Warden already holds the context as an
orjson-encoded string, so when the extension exposes ``is_authorized_batch`` (it is part
of the stub file cedarpy ships, ``_internal.pyi``) we call it directly and decode the answer
with orjson. ``FAST_PATH`` says which route is active; both give identical answers (tested).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, NewType

import cedarpy
import orjson

__all__ = [
    "FAST_PATH",
    "CedarError",
    "EntitiesHandle",
    "PolicySetHandle",
    "RawResponse",
    "SchemaHandle",
    "authorize",
    "authorize_batch",
    "entities_from_json",
    "entities_to_list",
    "entities_with_added",
    "policies_to_est",
    "policy_set_from_est",
    "policy_set_from_est_json",
    "schema_from_json",
    "schema_from_text",
    "validate_policies",
]

PolicySetHandle = NewType("PolicySetHandle", object)
EntitiesHandle = NewType("EntitiesHandle", object)
SchemaHandle = NewType("SchemaHandle", object)

# (decision, reasons, errors): decision is "Allow", "Deny" or "NoDecision" (request could
# not be built); reasons are policy ids; errors are Cedar's one-line diagnostics.
RawResponse = tuple[str, list[str], list[str]]


class CedarError(Exception):
    """A cedarpy call failed. ``str(err)`` is a single line."""


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _native_batch() -> Any:
    """The Rust batch entry point, if this cedarpy exposes it the way we expect."""
    native = getattr(cedarpy, "_internal", None)
    fn = getattr(native, "is_authorized_batch", None)
    if fn is None:
        return None
    try:
        probe = cedarpy.Entities.from_json_str("[]")
        inner = probe._inner
        ps = cedarpy.PolicySet.from_str("permit(principal, action, resource);")
        req = {
            "principal": {"type": "A", "id": "a"},
            "action": {"type": "Action", "id": "a"},
            "resource": {"type": "A", "id": "a"},
            "context": "{}",
        }
        answer = orjson.loads(fn([req], ps, inner, None, False)[0])
    except Exception:  # pragma: no cover - only on an incompatible cedarpy build
        return None
    if answer.get("decision") != "Allow":  # pragma: no cover
        return None
    return fn


_BATCH = _native_batch()
FAST_PATH: bool = _BATCH is not None


# --------------------------------------------------------------------------- policies


def policies_to_est(text: str) -> dict[str, Any]:
    """Parse Cedar policy text into its EST (JSON) form: ``staticPolicies``, ``templates``."""
    try:
        est: dict[str, Any] = orjson.loads(cedarpy.policies_to_json_str(text))
    except Exception as exc:
        raise CedarError(_one_line(exc)) from exc
    return est


def policy_set_from_est(
    static: Mapping[str, Any], templates: Mapping[str, Any] | None = None
) -> PolicySetHandle:
    """Build a policy-set handle whose Cedar policy ids are the keys of ``static``."""
    doc = {"staticPolicies": dict(static), "templates": dict(templates or {}), "templateLinks": []}
    return policy_set_from_est_json(orjson.dumps(doc).decode(), release_gil=len(static) > 256)


def policy_set_from_est_json(text: str, *, release_gil: bool = False) -> PolicySetHandle:
    try:
        return PolicySetHandle(cedarpy.PolicySet.from_json_str(text, release_gil=release_gil))
    except Exception as exc:
        raise CedarError(_one_line(exc)) from exc


def validate_policies(text: str, schema: SchemaHandle) -> list[tuple[str, str]]:
    """Validate policy text against a schema: ``[(parser policy id, message)]``, empty if ok.

    Policy ids are Cedar's positional ``policy<N>`` ids for ``text``.
    """
    try:
        result = cedarpy.validate_policies(text, schema, release_gil=True)
    except Exception as exc:  # pragma: no cover - the text parsed before
        raise CedarError(_one_line(exc)) from exc
    if result.validation_passed:
        return []
    return [(str(e.policy_id), " ".join(str(e.error).split())) for e in result.errors]


# --------------------------------------------------------------------------- schema


def schema_from_text(text: str) -> SchemaHandle:
    try:
        return SchemaHandle(cedarpy.Schema.from_str(text, release_gil=True))
    except Exception as exc:
        raise CedarError(_one_line(exc)) from exc


def schema_from_json(text: str) -> SchemaHandle:
    try:
        return SchemaHandle(cedarpy.Schema.from_json_str(text, release_gil=True))
    except Exception as exc:
        raise CedarError(_one_line(exc)) from exc


# --------------------------------------------------------------------------- entities


def entities_from_json(text: str, schema: SchemaHandle | None = None) -> EntitiesHandle:
    """Parse a Cedar entity JSON list (validated against ``schema`` when given)."""
    try:
        return EntitiesHandle(cedarpy.Entities.from_json_str(text, schema, release_gil=True))
    except Exception as exc:
        raise CedarError(_one_line(exc)) from exc


def entities_with_added(base: EntitiesHandle, delta_json: str) -> EntitiesHandle:
    """A new handle: ``base`` plus the entities in ``delta_json`` (only the delta is parsed)."""
    try:
        return EntitiesHandle(base.with_added_json_str(delta_json))  # type: ignore[attr-defined]
    except Exception as exc:
        raise CedarError(_one_line(exc)) from exc


def entities_to_list(handle: EntitiesHandle) -> list[dict[str, Any]]:
    """The entities of a handle as Cedar entity JSON (includes schema action entities)."""
    data: list[dict[str, Any]] = json.loads(str(handle))
    return data


# --------------------------------------------------------------------------- authorization


def _unpack(answer: Mapping[str, Any]) -> RawResponse:
    diag = answer.get("diagnostics") or {}
    return (str(answer.get("decision")), diag.get("reason") or [], diag.get("errors") or [])


def authorize(
    request: dict[str, Any], policies: PolicySetHandle, entities: EntitiesHandle
) -> RawResponse:
    """Evaluate one request. ``request["context"]`` must be a JSON string."""
    try:
        if _BATCH is not None:
            raw = _BATCH([request], policies, entities._inner, None, False)  # type: ignore[attr-defined]
            answer = orjson.loads(raw[0])
        else:
            answer = cedarpy.is_authorized(request, policies, entities)._authz_resp
    except Exception as exc:
        raise CedarError(_one_line(exc)) from exc
    return _unpack(answer)


def authorize_batch(
    requests: Sequence[dict[str, Any]], policies: PolicySetHandle, entities: EntitiesHandle
) -> list[RawResponse]:
    """Evaluate several requests against the same policies and entities, in order."""
    try:
        if _BATCH is not None:
            raws = _BATCH(list(requests), policies, entities._inner, None, False)  # type: ignore[attr-defined]
            answers = [orjson.loads(r) for r in raws]
        else:
            results = cedarpy.is_authorized_batch(list(requests), policies, entities)
            answers = [r._authz_resp for r in results]
    except Exception as exc:
        raise CedarError(_one_line(exc)) from exc
    return [_unpack(a) for a in answers]


def authorize_public(
    request: dict[str, Any], policies: PolicySetHandle, entities: EntitiesHandle
) -> RawResponse:
    """Same as ``authorize`` through cedarpy's public wrapper (used to test the fast path)."""
    try:
        answer = cedarpy.is_authorized(request, policies, entities)._authz_resp
    except Exception as exc:
        raise CedarError(_one_line(exc)) from exc
    return _unpack(answer)
