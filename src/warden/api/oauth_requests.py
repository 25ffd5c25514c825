"""Reading OAuth requests: the token endpoint's form, and the one ``token`` of revocation and
introspection — the wire side of ``service.tasks`` and ``service.credentials``.

Token request parameters (``application/x-www-form-urlencoded``, RFC 8693 §2.1):

- ``grant_type`` = ``urn:ietf:params:oauth:grant-type:token-exchange``
- ``subject_token`` + ``subject_token_type``: the workload identity (a JWT-SVID, type
  ``urn:ietf:params:oauth:token-type:jwt`` or ``…:jwt-svid``) to start a task, or a Warden task
  credential (``urn:ietf:params:oauth:token-type:access_token``) to renew one
- ``scope``: the tools/actions requested (space separated)
- ``audience`` / ``resource``: who the credential is for (repeatable; default: this Warden)
- ``authorization_details`` (RFC 9396): a JSON array with one ``{"type": "agent_task",
  "purpose": "…", "category": "…", "tools": […], "ttl": seconds, "on_behalf_of": "…"}``;
  ``tools`` are added to ``scope``
- ``actor_token`` + ``actor_token_type`` (``…:access_token``): delegation — a live task
  credential of the parent task; the subject token is then the child agent's own workload
  identity (see ``service.delegation``). When the parent credential is DPoP-bound, the parent
  signs a proof for this request too and it goes in ``actor_token_dpop`` (a Warden extension:
  one request can only carry one ``DPoP`` header, and that one binds the child).

A ``DPoP`` header (RFC 9449) binds the issued credential to the proof's key (``cnf.jkt``,
``token_type: DPoP``); agents of the risk tiers in ``dpop.required_risk_tiers`` must send one.
A renewal of a bound credential needs a proof by the same key.

``exchange`` reads each parameter at the step that needs it, between the services' checks (a
malformed ``authorization_details`` is refused after the subject token was attested, a narrowed
``scope`` after the renewed credential was checked), so what is refused, with which error and
which audit record, does not depend on where the reading lives. Nothing here imports Starlette:
the SDK's in-process Warden exchanges tokens through the same function.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from warden.attestation.base import Channel
from warden.core.scope import format_scope, parse_scope
from warden.errors import InvalidParameterError, OAuthError
from warden.service.credentials import CredentialService, Issued, Parent
from warden.service.manifests import FORM_PARAMETER as MANIFEST_PARAMETER
from warden.service.tasks import TaskRequest, TaskService
from warden.tokens.dpop import DPoPProof

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105 - a URN
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105 - a URN
TASK_DETAILS_TYPE = "agent_task"
MAX_PURPOSE = 1000
MAX_DETAILS_BYTES = 16 * 1024
MAX_DETAILS_DEPTH = 8

Form = Mapping[str, Sequence[str]]


def exchange(
    tasks: TaskService,
    credentials: CredentialService,
    form: Form,
    channel: Channel | None = None,
    *,
    dpop: str | None = None,
) -> dict[str, Any]:
    """The token endpoint (RFC 8693): start a task, delegate a subtask, or renew a credential.
    ``channel`` is how the request arrived (the TLS peer certificate for X.509-SVIDs); ``dpop``
    is the request's ``DPoP`` header, if any. Refusals raise ``OAuthError``."""
    grant_type = one(form, "grant_type", required=True)
    if grant_type != TOKEN_EXCHANGE:
        raise OAuthError("unsupported_grant_type", f"grant type `{grant_type}` is not supported")
    subject_token = one(form, "subject_token", required=True)
    subject_token_type = one(form, "subject_token_type", required=True)
    assert subject_token is not None and subject_token_type is not None
    actor_token = one(form, "actor_token")
    actor_token_type = one(form, "actor_token_type")
    if (actor_token is None) != (actor_token_type is None):
        raise OAuthError("invalid_request", "`actor_token` and `actor_token_type` go together")
    proof = credentials.request_proof(dpop) if dpop is not None else None
    if actor_token is not None:
        if actor_token_type != ACCESS_TOKEN_TYPE or subject_token_type == ACCESS_TOKEN_TYPE:
            raise OAuthError(
                "invalid_request",
                "delegation takes the child's workload identity as `subject_token` and a "
                f"task credential (`{ACCESS_TOKEN_TYPE}`) as `actor_token`",
            )
        parent = credentials.verify_actor(actor_token, one(form, "actor_token_dpop"))
        issued = _start(tasks, subject_token, subject_token_type, form, proof, parent, channel)
    elif subject_token_type == ACCESS_TOKEN_TYPE:
        renewal = credentials.check_renewal(subject_token, proof)
        issued = credentials.renew(renewal, narrowed_scope(form))
    else:
        issued = _start(tasks, subject_token, subject_token_type, form, proof, None, channel)
    return token_response(issued)


def _start(
    tasks: TaskService,
    subject_token: str,
    token_type: str,
    form: Form,
    proof: DPoPProof | None,
    parent: Parent | None,
    channel: Channel | None,
) -> Issued:
    identity = tasks.attest(subject_token, token_type, channel)
    return tasks.start(identity, task_request(form), proof, parent)


def token_response(issued: Issued) -> dict[str, Any]:
    """The token endpoint's answer (RFC 8693 §2.2, with the task's ``authorization_details``)."""
    task, scope = issued.task, issued.scope
    return {
        "access_token": issued.token,
        "issued_token_type": ACCESS_TOKEN_TYPE,
        "token_type": "DPoP" if issued.bound else "Bearer",
        "expires_in": max(0, int(issued.lifetime)),
        "scope": format_scope(scope),
        "task_id": task.id,
        "task_expires_at": int(task.expires_at),
        "authorization_details": [
            {
                "type": TASK_DETAILS_TYPE,
                "task_id": task.id,
                "purpose": task.purpose,
                "category": task.category,
                "tools": list(scope),
                "parent_id": task.parent_id,
                "chain": list(task.chain),
                "depth": task.depth,
            }
        ],
    }


# -- reading parameters ------------------------------------------------------------------------
def one(form: Form, key: str, *, required: bool = False) -> str | None:
    """The single value of ``key`` (None when absent or empty); given twice is a bad request."""
    values = form.get(key) or []
    if len(values) > 1:
        raise OAuthError("invalid_request", f"parameter `{key}` given more than once")
    if not values or values[0] == "":
        if required:
            raise OAuthError("invalid_request", f"missing parameter `{key}`")
        return None
    return values[0]


def task_request(form: Form) -> TaskRequest:
    """What a new task asks for: its ``authorization_details``, then ``scope`` (with the task's
    ``tools``), the audiences as sent, and a reader for the agent manifest."""
    details = task_details(form)
    try:
        requested = parse_scope([*(one(form, "scope") or "").split(), *details["tools"]])
    except InvalidParameterError as exc:
        raise OAuthError("invalid_scope", exc.message) from exc
    return TaskRequest(
        purpose=details["purpose"],
        category=details["category"],
        requested=requested,
        audiences=(*(form.get("audience") or []), *(form.get("resource") or [])),
        ttl=details["ttl"],
        on_behalf_of=details["on_behalf_of"],
        manifest=lambda: one(form, MANIFEST_PARAMETER),
    )


def task_details(form: Form) -> dict[str, Any]:
    """The one ``agent_task`` entry of ``authorization_details`` (RFC 9396), checked."""
    raw = one(form, "authorization_details")
    if raw is None:
        raise OAuthError(
            "invalid_request",
            "a task needs a purpose: send `authorization_details` "
            '[{"type": "agent_task", "purpose": "…"}]',
        )
    if len(raw) > MAX_DETAILS_BYTES or nesting(raw) > MAX_DETAILS_DEPTH:
        raise OAuthError(
            "invalid_request",
            f"`authorization_details` must be at most {MAX_DETAILS_BYTES} bytes and "
            f"{MAX_DETAILS_DEPTH} levels deep",
        )
    try:
        details = json.loads(raw)
    except (ValueError, RecursionError):
        raise OAuthError("invalid_request", "`authorization_details` is not valid json") from None
    if isinstance(details, dict):
        details = [details]
    if not isinstance(details, list) or not all(isinstance(d, dict) for d in details):
        raise OAuthError(
            "invalid_request", "`authorization_details` must be a json array of objects"
        )
    tasks = [d for d in details if d.get("type") == TASK_DETAILS_TYPE]
    if len(tasks) != 1:
        raise OAuthError(
            "invalid_request",
            f"`authorization_details` needs exactly one entry of type `{TASK_DETAILS_TYPE}`",
        )
    task = tasks[0]
    purpose = task.get("purpose")
    if not isinstance(purpose, str) or not purpose.strip() or len(purpose) > MAX_PURPOSE:
        raise OAuthError("invalid_request", "task `purpose` must be a non-empty string (≤1000)")
    category = task.get("category", "general")
    if not isinstance(category, str) or not category or len(category) > 100:
        raise OAuthError("invalid_request", "task `category` must be a short string")
    tools = task.get("tools", [])
    if not isinstance(tools, list) or not all(isinstance(t, str) for t in tools):
        raise OAuthError("invalid_request", "task `tools` must be a list of strings")
    ttl = task.get("ttl")
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int | float) or ttl <= 0):
        raise OAuthError("invalid_request", "task `ttl` must be a positive number of seconds")
    obo = task.get("on_behalf_of")
    if obo is not None and (not isinstance(obo, str) or not obo or len(obo) > 320):
        raise OAuthError("invalid_request", "task `on_behalf_of` must be a short string")
    return {
        "purpose": purpose.strip(),
        "category": category,
        "tools": tools,
        "ttl": ttl,
        "on_behalf_of": obo,
    }


def narrowed_scope(form: Form) -> tuple[str, ...] | None:
    """A renewal's ``scope``, when it asks to narrow the credential's (None: keep it)."""
    narrowed = one(form, "scope")
    if narrowed is None:
        return None
    try:
        return parse_scope(narrowed)
    except InvalidParameterError as exc:
        raise OAuthError("invalid_scope", exc.message) from exc


def nesting(text: str) -> int:
    """The deepest ``[``/``{`` nesting of a JSON text, outside strings (before parsing it)."""
    depth = deepest = 0
    in_string = escaped = False
    for c in text:
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif c in "]}":
            depth -= 1
    return deepest


def token_param(form: Form) -> str:
    """The one ``token`` of a revocation (RFC 7009) or introspection (RFC 7662) request."""
    values = form.get("token") or []
    if len(values) != 1 or not values[0]:
        raise OAuthError("invalid_request", "send exactly one `token`")
    return values[0]


def grant_label(form: Form) -> str:
    """A bounded metric label: token_exchange (a new task), delegation, renewal, or
    unsupported."""
    if (form.get("grant_type") or [""])[0] != TOKEN_EXCHANGE:
        return "unsupported"
    if form.get("actor_token"):
        return "delegation"
    if (form.get("subject_token_type") or [""])[0] == ACCESS_TOKEN_TYPE:
        return "renewal"
    return "token_exchange"
