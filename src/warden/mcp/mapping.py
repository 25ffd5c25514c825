"""MCP JSON-RPC → AuthZEN, and decisions → JSON-RPC errors (COAZ-MCP binding, Warden's convention).

Pure functions over decoded JSON. Warden's tool-call convention (DESIGN §5) replaces the
binding's default shape: a call of tool ``X`` on upstream server ``S`` is action ``X`` on
resource ``MCPServer::"S"`` with the call's arguments in ``context.arguments``.

=====================  ============================  =============================================
method                 action                        resource
=====================  ============================  =============================================
``tools/call``         the tool name                 ``{type: "MCPServer", id: <upstream>}``
``resources/read``     ``resources/read``            ``{type: "MCPResource", id: <uri>}``
``resources/subscribe``  ``resources/read``          ``{type: "MCPResource", id: <uri>}``
``prompts/get``        ``prompts/get``               ``{type: "MCPPrompt", id: <name>}``
=====================  ============================  =============================================

Every request also carries ``context.mcp = {method, server}``. The subject is the agent,
``{type: "agent", id: <SPIFFE ID>, properties: {token: <task credential>}}``; the PDP verifies
the credential. List methods are filtered item by item with the same requests marked
``context.listing = true`` (``for_listing``; Warden then opens no approval request and spends
no grant, see ``listing_verdict``). ``ping`` and notifications pass; anything else is denied.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from warden.core.ids import full_match
from warden.core.reasons import APPROVAL_REQUIRED, POLICY, deny_reason

__all__ = [
    "DENIED",
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "METHOD_NOT_FOUND",
    "PARSE_ERROR",
    "denial_error",
    "error_response",
    "for_listing",
    "listing_verdict",
    "prompt_request",
    "resource_request",
    "tool_request",
    "valid_tool_name",
]

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
DENIED = -32001  # COAZ-MCP: the PDP said no

MCP_SERVER = "MCPServer"
MCP_RESOURCE = "MCPResource"
MCP_PROMPT = "MCPPrompt"

# SEP-986 tool names, minus a leading dot: no slashes, quotes, colons or spaces, so a name can
# never read as a path or as Cedar syntax (``Action::"x"``).
_TOOL_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")

# The PDP's reason codes other than ``policy`` (core/reasons.py), in words for the agent.
_REASON_TEXT = {
    "out_of_scope": "is outside this task's scope",
    "invalid_credential": "was refused: the task credential is not valid",
    "missing_credential": "was refused: no task credential was presented",
    "invalid_dpop_proof": "was refused: the DPoP proof is not valid for this request",
    "tool_mismatch": "was refused: the action and the tool resource name different tools",
    "agent_suspended": "was refused: the agent is suspended",
    "budget_exceeded": "was refused: the agent's budget is spent",
    "evaluation_error": "could not be evaluated, so it is denied",
    "approval_required": "needs approval",
    "approval_denied": "was refused by its approver",
    "approval_used": "was approved once already; ask again",
    "approval_expired": "waited too long for approval",
    "approval_rate_limited": "needs approval, but too many requests are waiting; try later",
    "approval_unavailable": "needs approval, but no request could be opened for it",
}


def valid_tool_name(name: Any) -> bool:
    return full_match(_TOOL_NAME, name) and ".." not in name


def _envelope(
    subject: Mapping[str, Any],
    action: str,
    resource: dict[str, Any],
    method: str,
    server: str,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    context: dict[str, Any] = {"mcp": {"method": method, "server": server}}
    if extra:
        context.update(extra)
    return {
        "subject": dict(subject),
        "action": {"name": action},
        "resource": resource,
        "context": context,
    }


def tool_request(
    subject: Mapping[str, Any], tool: str, server: str, arguments: Mapping[str, Any] | None
) -> dict[str, Any]:
    """``tools/call``: the tool is the action, the upstream the resource."""
    extra = {"arguments": dict(arguments)} if arguments is not None else None
    return _envelope(subject, tool, {"type": MCP_SERVER, "id": server}, "tools/call", server, extra)


def resource_request(
    subject: Mapping[str, Any], uri: str, server: str, method: str = "resources/read"
) -> dict[str, Any]:
    # a read is a call: it carries (empty) arguments, so it can never pass for a listing
    resource = {"type": MCP_RESOURCE, "id": uri}
    return _envelope(subject, "resources/read", resource, method, server, {"arguments": {}})


def prompt_request(
    subject: Mapping[str, Any], name: str, server: str, arguments: Mapping[str, Any] | None
) -> dict[str, Any]:
    extra = {"arguments": dict(arguments)} if arguments is not None else None
    return _envelope(
        subject, "prompts/get", {"type": MCP_PROMPT, "id": name}, "prompts/get", server, extra
    )


def for_listing(request: dict[str, Any]) -> dict[str, Any]:
    """Mark a request as a listing question: show the item or not; nothing runs yet. A listing
    carries no arguments — Warden treats any request that does as a call, flag or not."""
    request["context"].pop("arguments", None)
    request["context"]["listing"] = True
    return request


def listing_verdict(response: Mapping[str, Any], *, takes_arguments: bool = True) -> bool:
    """Whether a list entry is shown, from the decision on using it *without* its arguments.

    An entry used without arguments (a resource) is shown only when that decision allows.

    A listing cannot know the arguments a later call will carry, so it hides only what is
    denied whatever they are: a refusal before policy (credential, scope) or a deny that names
    the forbid policies behind it. A default deny (no permit matched yet, no forbid applies)
    stays visible, because a permit may match once the arguments are known; the call itself
    is always decided in full.
    """
    if response.get("decision") is True:
        return True
    context = response.get("context")
    if not isinstance(context, Mapping):
        return False
    reason = deny_reason(context)
    if _approval(context) is not None or reason == APPROVAL_REQUIRED:
        return True  # callable once a human approves (a listing opens no request itself)
    if reason != POLICY or not takes_arguments:
        return False  # refused before policy: no argument can change that
    return not context.get("reasons")


def _approval(context: Mapping[str, Any]) -> dict[str, Any] | None:
    """The pending approval request a decision context carries, normalised.

    Warden's step-up decisions (issue 5) put the AuthZEN Access Request task handle in
    ``context.approval_request`` (``id``, ``status``, ``status_endpoint``, ``wait_endpoint``,
    ``expires_at``, ``progress``…); a bare ``context.approval`` id (or ``{id}``) is read too. A
    granted approval (``{"granted": true}``) is not a request to wait for.
    """
    raw = context.get("approval_request")
    if raw is None:
        raw = context.get("approval")
    if isinstance(raw, str):
        raw = {"id": raw}
    if not isinstance(raw, Mapping) or not isinstance(raw.get("id"), str) or raw.get("granted"):
        return None
    keep = ("id", "status", "expires_at", "progress", "status_endpoint", "wait_endpoint")
    out = {k: raw[k] for k in keep if raw.get(k) is not None}
    out.setdefault("status_endpoint", f"/v1/approvals/{raw['id']}")
    out.setdefault("wait_endpoint", f"/v1/approvals/{raw['id']}/wait")
    out["retry"] = "call again with the same arguments once the request is approved"
    return out


def denial_error(target: str, response: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON-RPC error object for a deny (``-32001``), readable by a person and a program.

    ``data`` holds the decision's ``reason`` code as the PDP gave it (``policy``,
    ``approval_required``, ``out_of_scope``, ``approval_denied``…: core/reasons.py),
    ``decision_id``, the determining ``policies`` and, when the decision opened an approval
    request, ``approval`` with its id, status and where to wait for it (``wait_endpoint``, a
    long poll).
    """
    context = response.get("context")
    context = context if isinstance(context, Mapping) else {}
    decision_id = context.get("decision_id")
    policies = [p for p in context.get("reasons") or [] if isinstance(p, str)]
    approval = _approval(context)
    reason = deny_reason(context)
    data: dict[str, Any] = {"decision_id": decision_id, "reason": reason, "policies": policies}
    if approval is not None:
        data["reason"] = APPROVAL_REQUIRED
        data["approval"] = approval
        message = (
            f"`{target}` needs approval: approval request {approval['id']} is waiting; "
            "call again once it is approved"
        )
    elif reason != POLICY:
        message = f"`{target}` {_REASON_TEXT.get(reason, f'was denied ({reason})')}"
    else:
        message = (
            f"`{target}` is denied by policy {', '.join(policies)}"
            if policies
            else f"`{target}` is not permitted by any policy"
        )
    return {"code": DENIED, "message": message, "data": data}


def error_response(request_id: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": error}
