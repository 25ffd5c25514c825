"""The reason codes of a decision: one shape for every answer an enforcement point reads.

Every AuthZEN decision Warden returns carries, in ``context`` (ADR 0101, docs/enforcement.md):

* ``decision_id`` — the key of its audit record (``null`` only for a batch item that was never
  evaluated because it was malformed);
* ``reason`` — one stable code: ``allowed`` on every allow (monitor mode included: what
  enforcement would have said is ``monitor.reason``), ``policy`` when Cedar denied, or the
  code of a refusal before Cedar or of a step-up;
* ``reasons`` — the determining policy ids: the permits of an allow, the forbids of a policy
  deny or step-up (in monitor mode, the forbids that would have denied), ``[]`` for a refusal
  and for a default deny (no permit matched).

The codes are the enforcement points' too: the MCP proxy's ``data.reason``, forward-auth's
``details.reason``, the A2A proxy's ``data.reason`` and the SDK's ``AccessDeniedError.reason``
pass them through unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ALLOWED = "allowed"
POLICY = "policy"
APPROVAL_REQUIRED = "approval_required"

# Refusals before Cedar runs (service/decisions.py): the request never reached policy.
REFUSALS = (
    "missing_credential",
    "invalid_credential",
    "invalid_dpop_proof",
    "out_of_scope",
    "tool_mismatch",
    "agent_suspended",
    "budget_exceeded",
    "counters_unavailable",  # the shared counters did not answer (ADR 0094): fail closed
    "evaluation_error",
    "invalid_request",  # a malformed item of a batch (``/access/v1/evaluations``)
)
# Step-up (docs/approvals.md): a policy asked for a human and there is no usable grant.
APPROVALS = (
    APPROVAL_REQUIRED,
    "approval_denied",
    "approval_used",
    "approval_rate_limited",
    "approval_unavailable",
)
CODES = (ALLOWED, POLICY, *REFUSALS, *APPROVALS)

# The approval audit's ``outcome`` → the code of a decision that asked for approval
_ASKED = {
    "denied": "approval_denied",
    "rate_limited": "approval_rate_limited",
    "unavailable": "approval_unavailable",
    "undigestable": "approval_unavailable",  # arguments that cannot be bound to a grant
}


def decision_reason(allowed: bool, approval: Mapping[str, Any] | None = None) -> str:
    """The code of a decision Cedar made, from its approval record (the ``approval`` member of
    the ``authz.decision`` audit record): refusals carry their own code."""
    if allowed:
        return ALLOWED
    if not isinstance(approval, Mapping):
        return POLICY
    outcome = approval.get("outcome")
    if approval.get("required"):
        return _ASKED.get(str(outcome), APPROVAL_REQUIRED)
    if outcome == "used":  # a grant that was spent already
        return "approval_used"
    return POLICY  # a live grant, but policy denies the call anyway


def recorded_reason(data: Mapping[str, Any]) -> str:
    """The code of an ``authz.decision`` audit record (the one its response carried)."""
    code = data.get("reason")
    if isinstance(code, str):
        return code
    approval = data.get("approval")
    return decision_reason(data.get("decision") == "allow", approval)


def deny_reason(context: Mapping[str, Any]) -> str:
    """The code of a deny as an enforcement point reads it (``policy`` when a server that
    predates the shape sent none)."""
    code = context.get("reason")
    return code if isinstance(code, str) and code and code != ALLOWED else POLICY
