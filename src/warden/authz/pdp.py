"""The policy decision point: Cedar evaluation with Warden's fail-closed rules.

``PolicyDecisionPoint`` holds the active ``LoadedPolicySet``. Activation swaps one
reference; every evaluation reads that reference once, so a reload never mixes two sets
within a decision (and never blocks readers).

Decision rules, on top of Cedar's (default deny, forbid overrides permit):

* **Any failure is a deny.** Values Cedar cannot hold, an invalid type name, a request the
  engine cannot build, or any exception from cedarpy yield ``allowed=False`` with the
  problem in ``errors``. Only "no active policy set" raises (``PolicyEvaluationError``):
  then the PDP cannot run at all.
* **An erroring forbid denies.** Cedar skips a policy whose condition raises an error
  (missing attribute, type mismatch, overflow) and decides without it. For a permit that
  is already fail-closed, but a forbid is a guard: if ``forbid … when { context.amount >
  500 }`` errors because ``amount`` is missing or a string, skipping it would let the
  request through exactly when the guard could not be checked. So if any forbid errors,
  Warden denies, with that forbid's id in ``reasons`` and Cedar's message in ``errors``.
* **Monitor mode.** Forbids annotated ``@mode("monitor")`` are evaluated but not enforced.
  If the only forbids that deny (or error) are monitor-mode, the request is re-evaluated
  without them (that slice variant is cached); ``allowed`` is the result, and
  ``monitored`` names the monitor forbids that would have denied.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from warden.errors import PolicyEvaluationError

from . import _cedar
from .policy_set import LoadedPolicySet, Slice, check_type_name, encode_context
from .projection import project
from .types import AuthzRequest, Decision, EntityRef

__all__ = ["Explanation", "PolicyDecisionPoint"]

_Prepared = tuple[Slice, _cedar.EntitiesHandle, dict[str, Any]]


class PolicyDecisionPoint:
    """Evaluates ``AuthzRequest``s against the active policy set.

    ``slicing=False`` evaluates every request against the full set (for tests and
    troubleshooting; decisions are identical, only slower at scale).
    """

    def __init__(self, policy_set: LoadedPolicySet | None = None, *, slicing: bool = True) -> None:
        self._active: LoadedPolicySet | None = policy_set
        self._slicing = slicing

    # ------------------------------------------------------------------ activation

    def activate(self, policy_set: LoadedPolicySet) -> None:
        """Make ``policy_set`` the active set (atomic reference swap)."""
        self._active = policy_set

    @property
    def policy_set(self) -> LoadedPolicySet | None:
        return self._active

    @property
    def revision(self) -> str | None:
        active = self._active
        return active.revision if active is not None else None

    def _require(self) -> LoadedPolicySet:
        active = self._active
        if active is None:
            raise PolicyEvaluationError("no active policy set")
        return active

    # ------------------------------------------------------------------ evaluation

    def evaluate(self, request: AuthzRequest) -> Decision:
        """Decide one request. Raises only when no policy set is active."""
        lps = self._require()
        try:
            sl, entities, cedar_request = self._prepare(lps, request)
        except PolicyEvaluationError as exc:
            return Decision(False, (), (exc.message,), lps.revision)
        except (TypeError, ValueError, AttributeError) as exc:  # malformed request object
            return Decision(False, (), (f"malformed request: {exc}",), lps.revision)
        try:
            raw = _cedar.authorize(cedar_request, sl.policy_set, entities)
        except _cedar.CedarError as exc:
            return Decision(False, (), (f"policy evaluation failed: {exc}",), lps.revision)
        decision, reasons, errors = raw
        if decision == "Allow" and not errors:  # the common case, kept short
            return Decision(True, tuple(reasons), (), lps.revision, (), lps.annotations_of(reasons))
        return self._decide(lps, sl, entities, cedar_request, raw)

    def evaluate_batch(self, requests: Sequence[AuthzRequest]) -> list[Decision]:
        """Decide several requests, in order; each is independent of the others.

        Requests that share a policy slice and an entity set go to Cedar in one batch call.
        """
        return self._evaluate_batch(self._require(), requests)

    def _evaluate_batch(
        self, lps: LoadedPolicySet, requests: Sequence[AuthzRequest]
    ) -> list[Decision]:
        results: list[Decision | None] = [None] * len(requests)
        groups: dict[tuple[int, int], tuple[Slice, _cedar.EntitiesHandle, list[int]]] = {}
        cedar_requests: list[dict[str, Any]] = [{}] * len(requests)
        for i, request in enumerate(requests):
            try:
                sl, entities, cedar_request = self._prepare(lps, request)
            except PolicyEvaluationError as exc:
                results[i] = Decision(False, (), (exc.message,), lps.revision)
                continue
            except (TypeError, ValueError, AttributeError) as exc:
                results[i] = Decision(False, (), (f"malformed request: {exc}",), lps.revision)
                continue
            cedar_requests[i] = cedar_request
            group = groups.setdefault((id(sl), id(entities)), (sl, entities, []))
            group[2].append(i)
        for sl, entities, indexes in groups.values():
            batch = [cedar_requests[i] for i in indexes]
            try:
                raws = _cedar.authorize_batch(batch, sl.policy_set, entities)
            except _cedar.CedarError as exc:
                for i in indexes:
                    results[i] = Decision(
                        False, (), (f"policy evaluation failed: {exc}",), lps.revision
                    )
                continue
            for i, raw in zip(indexes, raws, strict=True):
                results[i] = self._decide(lps, sl, entities, cedar_requests[i], raw)
        return [r for r in results if r is not None]

    def _prepare(self, lps: LoadedPolicySet, request: AuthzRequest) -> _Prepared:
        principal = request.principal
        resource = request.resource
        parents = request.principal_parents
        if type(parents) is not tuple:
            parents = tuple(parents)
        check_type_name(principal.type)
        check_type_name(resource.type)
        for parent in parents:
            check_type_name(parent.type)
        if self._slicing:
            sl = lps.slice_for(
                principal.type, principal.id, parents, request.action, resource.type, resource.id
            )
        else:
            sl = lps.full
        # Cedar decodes every byte it is given: only what the slice's policies can read of
        # context.warden goes (projection.py); the caller's request keeps it all
        context = encode_context(project(request.context, sl.warden))
        entities = lps.entities_for(
            principal, request.principal_attrs, parents, resource, request.resource_attrs
        )
        cedar_request = {
            "principal": {"type": principal.type, "id": principal.id},
            "action": {"type": "Action", "id": request.action},
            "resource": {"type": resource.type, "id": resource.id},
            "context": context,
        }
        return sl, entities, cedar_request

    def _decide(
        self,
        lps: LoadedPolicySet,
        sl: Slice,
        entities: _cedar.EntitiesHandle,
        cedar_request: dict[str, Any],
        raw: _cedar.RawResponse,
    ) -> Decision:
        decision, reasons, errors = raw
        revision = lps.revision
        if decision == "NoDecision":  # Cedar could not even build the request
            return Decision(False, (), tuple(errors) or ("request rejected by cedar",), revision)
        if decision == "Allow" and not errors:
            return Decision(True, tuple(reasons), (), revision, (), lps.annotations_of(reasons))

        enforce: list[str] = []
        monitor: list[str] = []
        unattributed = False
        denying = reasons if decision == "Deny" else []
        for pid in denying:
            (monitor if lps.is_monitor(pid) else enforce).append(pid)
        for message in errors:
            failed = lps.errored_policy(message)
            if failed is None:
                unattributed = True  # cannot tell which policy failed: fail closed
            elif lps.is_forbid(failed):
                (monitor if lps.is_monitor(failed) else enforce).append(failed)
        enforce = _unique(enforce)
        monitor = _unique(monitor)

        if enforce or unattributed:
            allowed = False
            final_reasons: list[str] = enforce
        elif decision == "Allow":
            allowed = True  # only monitor-mode forbids errored
            final_reasons = list(reasons)
        elif not denying:
            allowed = False  # default deny: no permit applied
            final_reasons = []
        else:
            # Only monitor-mode forbids deny: decide again without them.
            try:
                quiet = sl.without_monitor()
                again, reasons2, errors2 = _cedar.authorize(
                    cedar_request, quiet.policy_set, entities
                )
            except (_cedar.CedarError, PolicyEvaluationError) as exc:
                return Decision(
                    False,
                    (),
                    (*errors, f"policy evaluation failed: {exc}"),
                    revision,
                    tuple(monitor),
                    lps.annotations_of(monitor),
                )
            errors = _unique([*errors, *errors2])
            guard: list[str] = []
            unattributed = False
            for message in errors2:
                failed = lps.errored_policy(message)
                if failed is None:
                    unattributed = True
                elif lps.is_forbid(failed):
                    guard.append(failed)
            if again == "Allow" and not guard and not unattributed:
                allowed, final_reasons = True, list(reasons2)
            else:
                allowed = False
                final_reasons = _unique([*(reasons2 if again == "Deny" else []), *guard])
        return Decision(
            allowed,
            tuple(final_reasons),
            tuple(errors),
            revision,
            tuple(monitor),
            lps.annotations_of([*final_reasons, *monitor]),
        )

    # ------------------------------------------------------------------ explain

    def explain(self, request: AuthzRequest) -> Explanation:
        """Why a request is decided the way it is (``warden policies explain``).

        ``determining`` are the decision's reasons; ``overridden`` the permits whose
        conditions hold but that a forbid beat; ``monitored`` the monitor-mode forbids that
        matched; ``considered`` the policies whose scope can match (the slice); ``reads``
        the context paths those policies read, each with whether the request has it.
        """
        lps = self._require()
        decision = self.evaluate(request)
        try:
            sl, entities, cedar_request = self._prepare(lps, request)
        except (PolicyEvaluationError, TypeError, ValueError, AttributeError):
            return Explanation(decision, (), (), (), {})
        considered = tuple(pid for pid in lps.policy_ids if pid in sl.ids)
        overridden: tuple[str, ...] = ()
        permits = frozenset(pid for pid in sl.ids if not lps.is_forbid(pid))
        if not decision.allowed and permits:
            try:
                verdict, reasons, _ = _cedar.authorize(
                    cedar_request, lps.slice_of(permits).policy_set, entities
                )
            except (_cedar.CedarError, PolicyEvaluationError):
                verdict, reasons = "Deny", []
            if verdict == "Allow":
                overridden = tuple(r for r in reasons if r not in decision.reasons)
        reads: dict[str, bool] = {}
        for pid in considered:
            for path in sorted(lps.policies[pid].reads):
                reads[path] = _has_path(request.context, path)
        return Explanation(decision, considered, overridden, decision.monitored, reads)

    # ------------------------------------------------------------------ search

    def search_subjects(
        self,
        subject_type: str,
        action: str,
        resource: EntityRef,
        context: Mapping[str, Any],
        *,
        resource_attrs: Mapping[str, Any] | None = None,
    ) -> list[EntityRef]:
        """Every stored entity of ``subject_type`` that may perform ``action`` on ``resource``."""
        lps = self._require()
        requests = [
            AuthzRequest(
                principal=EntityRef(subject_type, sid),
                action=action,
                resource=resource,
                resource_attrs=resource_attrs,
                context=context,
            )
            for sid in lps.entity_ids(subject_type)
        ]
        decisions = self._evaluate_batch(lps, requests)
        return [r.principal for r, d in zip(requests, decisions, strict=True) if d.allowed]

    def search_resources(
        self,
        subject: EntityRef,
        subject_attrs: Mapping[str, Any] | None,
        action: str,
        resource_type: str,
        context: Mapping[str, Any],
        *,
        subject_parents: tuple[EntityRef, ...] = (),
    ) -> list[EntityRef]:
        """Every stored entity of ``resource_type`` on which ``subject`` may perform ``action``."""
        lps = self._require()
        requests = [
            AuthzRequest(
                principal=subject,
                principal_attrs=subject_attrs,
                principal_parents=subject_parents,
                action=action,
                resource=EntityRef(resource_type, rid),
                context=context,
            )
            for rid in lps.entity_ids(resource_type)
        ]
        decisions = self._evaluate_batch(lps, requests)
        return [r.resource for r, d in zip(requests, decisions, strict=True) if d.allowed]

    def search_actions(
        self,
        subject: EntityRef,
        subject_attrs: Mapping[str, Any] | None,
        resource: EntityRef,
        resource_attrs: Mapping[str, Any] | None,
        context: Mapping[str, Any],
        *,
        subject_parents: tuple[EntityRef, ...] = (),
    ) -> list[str]:
        """Every candidate action ``subject`` may perform on ``resource``.

        Candidates are the ``Action`` entities of the store plus every action named in a
        policy scope.
        """
        lps = self._require()
        names = lps.action_names()
        requests = [
            AuthzRequest(
                principal=subject,
                principal_attrs=subject_attrs,
                principal_parents=subject_parents,
                action=name,
                resource=resource,
                resource_attrs=resource_attrs,
                context=context,
            )
            for name in names
        ]
        decisions = self._evaluate_batch(lps, requests)
        return [n for n, d in zip(names, decisions, strict=True) if d.allowed]


@dataclass(frozen=True, slots=True)
class Explanation:
    decision: Decision
    considered: tuple[str, ...]
    overridden: tuple[str, ...]
    monitored: tuple[str, ...]
    reads: Mapping[str, bool]  # context path -> present in the request

    @property
    def determining(self) -> tuple[str, ...]:
        return self.decision.reasons


def _has_path(context: Mapping[str, Any], path: str) -> bool:
    node: Any = context
    for part in path.split(".")[1:]:  # the first part is `context`
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
