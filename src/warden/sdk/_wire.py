"""What the SDK sends and how it reads answers: pure builders and parsers shared by the sync and
async clients (they differ only in how a request is sent)."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

import httpx

from warden.core.reasons import POLICY
from warden.errors import (
    AccessDeniedError,
    ApprovalRequiredError,
    DecisionUnavailableError,
    RemoteAPIError,
)

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105 - a URN
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105 - a URN


@dataclass(frozen=True, slots=True)
class TaskCredential:
    """A task credential as the token endpoint returned it. ``expires_at`` is absolute (epoch s)."""

    token: str
    task_id: str
    scope: tuple[str, ...]
    issued_at: float
    expires_at: float
    task_expires_at: float
    spiffe_id: str

    def __repr__(self) -> str:  # never show the token itself
        return (
            f"TaskCredential(task_id={self.task_id!r}, spiffe_id={self.spiffe_id!r}, "
            f"scope={self.scope!r}, expires_at={self.expires_at!r})"
        )

    def renew_due(self, now: float, *, margin: float | None = None) -> bool:
        """True when the credential should be renewed: inside the last fifth of its lifetime
        (or the last ``margin`` seconds), as long as the task itself lives on."""
        lifetime = max(0.0, self.expires_at - self.issued_at)
        window = margin if margin is not None else max(1.0, lifetime / 5)
        return now >= self.expires_at - window and now < self.task_expires_at


@dataclass(frozen=True, slots=True)
class Decision:
    """One AuthZEN decision as an enforcement point reads it: ``reason`` is the stable code
    (``allowed``, ``policy``, ``out_of_scope``, ``approval_required``…: core/reasons.py),
    ``policies`` the determining policy ids."""

    allowed: bool
    decision_id: str | None
    reason: str | None
    policies: tuple[str, ...]
    approval_id: str | None
    raw: Mapping[str, Any] = field(repr=False)

    @classmethod
    def of(cls, response: Mapping[str, Any]) -> Decision:
        context = response.get("context")
        context = context if isinstance(context, Mapping) else {}
        approval = context.get("approval_request") or context.get("approval")
        if isinstance(approval, Mapping):
            approval = None if approval.get("granted") else approval.get("id")
        return cls(
            allowed=response.get("decision") is True,
            decision_id=context.get("decision_id"),
            reason=context.get("reason"),
            policies=tuple(p for p in context.get("reasons") or () if isinstance(p, str)),
            approval_id=approval if isinstance(approval, str) else None,
            raw=response,
        )

    def enforce(self, what: str) -> None:
        """Raise ``ApprovalRequiredError`` / ``AccessDeniedError`` unless allowed."""
        if self.allowed:
            return
        raw = dict(self.raw)
        if self.approval_id is not None:
            raise ApprovalRequiredError(
                f"`{what}` needs approval (request {self.approval_id})",
                approval_id=self.approval_id,
                decision=raw,
            )
        if self.reason and self.reason != POLICY:
            why = self.reason
        elif self.policies:
            why = f"denied by policy {', '.join(self.policies)}"
        else:
            why = "not permitted"
        raise AccessDeniedError(f"`{what}` was denied: {why}", decision=raw)


LeaseKind = Literal["postgres", "jwt"]


@dataclass(frozen=True, slots=True)
class Lease:
    """A just-in-time downstream credential bound to a task (``POST /v1/tasks/{id}/leases``).

    ``target`` names the configured PostgreSQL target or downstream service. The secret —
    ``password`` (postgres) or ``token`` (jwt) — is only present in the answer that created the
    lease; listings never carry it. ``state`` is ``creating``, ``active``, ``revoking``,
    ``revoked`` or ``failed``; a lease dies with its task.
    """

    id: str
    task_id: str
    kind: str
    target: str
    state: str
    expires_at: float
    revoked_at: float | None = None
    # postgres: the login, shown once
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    host: str | None = None
    port: int | None = None
    database: str | None = None
    # jwt: the audience-bound token, shown once
    audience: str | None = None
    token: str | None = field(default=None, repr=False)
    token_type: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def dsn(self) -> str:
        """A libpq connection URL for a PostgreSQL lease (password included)."""
        if self.kind != "postgres" or not self.username or self.password is None:
            raise ValueError("only a freshly created postgres lease has a connection URL")
        user, password = quote(self.username, safe=""), quote(self.password, safe="")
        database = quote(self.database or "", safe="")
        return f"postgresql://{user}:{password}@{self.host}:{self.port}/{database}"


def lease_request(kind: LeaseKind, target: str, ttl: float | None) -> dict[str, Any]:
    """The body of ``POST /v1/tasks/{id}/leases``: a postgres ``target`` or a jwt ``audience``."""
    if kind not in ("postgres", "jwt"):
        raise ValueError(f"lease kind must be postgres or jwt, not {kind!r}")
    body: dict[str, Any] = {"kind": kind, "target" if kind == "postgres" else "audience": target}
    if ttl is not None:
        body["ttl"] = ttl
    return body


def lease_of(body: Any) -> Lease:
    if not isinstance(body, Mapping) or not isinstance(body.get("id"), str):
        raise RemoteAPIError("warden's answer holds no lease", status=200, error_code="")

    def text(key: str) -> str | None:
        value = body.get(key)
        return value if isinstance(value, str) else None

    port = body.get("port")
    revoked_at = body.get("revoked_at")
    return Lease(
        id=body["id"],
        task_id=str(body.get("task_id", "")),
        kind=str(body.get("kind", "")),
        target=str(body.get("target", "")),
        state=str(body.get("state", "")),
        expires_at=float(body.get("expires_at") or 0),
        revoked_at=float(revoked_at) if isinstance(revoked_at, int | float) else None,
        username=text("username"),
        password=text("password"),
        host=text("host"),
        port=port if isinstance(port, int) and not isinstance(port, bool) else None,
        database=text("database"),
        audience=text("audience"),
        token=text("token"),
        token_type=text("token_type"),
        raw=body,
    )


def leases_of(body: Any) -> list[Lease]:
    items = body.get("leases") if isinstance(body, Mapping) else None
    if not isinstance(items, list):
        raise RemoteAPIError("warden's answer holds no lease list", status=200, error_code="")
    return [lease_of(item) for item in items]


def unverified_subject(token: str) -> str:
    """The ``sub`` claim of a JWT, NOT verified: for addressing the PDP, which verifies it."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return ""
    sub = claims.get("sub") if isinstance(claims, dict) else None
    return sub if isinstance(sub, str) else ""


def agent_subject(token: str) -> dict[str, Any]:
    """The AuthZEN subject for an agent holding ``token`` (agent mode)."""
    return {"type": "agent", "id": unverified_subject(token), "properties": {"token": token}}


def tool_evaluation(
    token: str,
    tool: str,
    arguments: Mapping[str, Any] | None = None,
    *,
    resource: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An AuthZEN request for one tool call in Warden's convention (DESIGN §5)."""
    ctx: dict[str, Any] = dict(context or {})
    ctx["arguments"] = dict(arguments or {})
    return {
        "subject": agent_subject(token),
        "action": {"name": tool},
        "resource": dict(resource) if resource else {"type": "Tool", "id": tool},
        "context": ctx,
    }


def exchange_form(
    subject_token: str,
    *,
    scope: Sequence[str] | str,
    purpose: str,
    category: str = "general",
    audience: Sequence[str] | str | None = None,
    subject_token_type: str = JWT_TYPE,
    ttl: float | None = None,
    on_behalf_of: str | None = None,
    manifest: str | Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The token-exchange form; ``manifest`` is a signed agent manifest (a DSSE envelope, as
    JSON text or decoded) sent as ``agent_manifest``."""
    details: dict[str, Any] = {"type": "agent_task", "purpose": purpose, "category": category}
    if ttl is not None:
        details["ttl"] = ttl
    if on_behalf_of is not None:
        details["on_behalf_of"] = on_behalf_of
    form: dict[str, Any] = {
        "grant_type": TOKEN_EXCHANGE,
        "subject_token": subject_token,
        "subject_token_type": subject_token_type,
        "scope": scope if isinstance(scope, str) else " ".join(scope),
        "authorization_details": json.dumps([details]),
    }
    if audience:
        form["audience"] = [audience] if isinstance(audience, str) else list(audience)
    if manifest is not None:
        form["agent_manifest"] = manifest if isinstance(manifest, str) else json.dumps(manifest)
    return form


def observe_body(
    server: str, tools: Sequence[Mapping[str, Any]], mode: str, agent: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"server": server, "tools": [dict(t) for t in tools], "mode": mode}
    if agent:
        body["agent"] = agent
    return body


def verdicts_of(body: Any) -> dict[str, str]:
    verdicts = body.get("verdicts") if isinstance(body, Mapping) else None
    if not isinstance(verdicts, Mapping):
        raise DecisionUnavailableError("the tool-pin answer has no `verdicts`")
    return {str(k): str(v) for k, v in verdicts.items()}


def renew_form(token: str, scope: Sequence[str] | str | None = None) -> dict[str, Any]:
    form: dict[str, Any] = {
        "grant_type": TOKEN_EXCHANGE,
        "subject_token": token,
        "subject_token_type": ACCESS_TOKEN_TYPE,
    }
    if scope is not None:
        form["scope"] = scope if isinstance(scope, str) else " ".join(scope)
    return form


def credential_of(body: Any, now: float) -> TaskCredential:
    if not isinstance(body, Mapping) or not isinstance(body.get("access_token"), str):
        raise RemoteAPIError("the token endpoint gave no credential", status=200, error_code="")
    token = body["access_token"]
    return TaskCredential(
        token=token,
        task_id=str(body.get("task_id", "")),
        scope=tuple(str(body.get("scope", "")).split()),
        issued_at=now,
        expires_at=now + float(body.get("expires_in", 0)),
        task_expires_at=float(body.get("task_expires_at", now)),
        spiffe_id=unverified_subject(token),
    )


def read_body(response: httpx.Response) -> Any:
    """The JSON body of a 2xx answer, or ``RemoteAPIError`` with the server's error code."""
    try:
        body = response.json() if response.content else None
    except ValueError:
        body = None
    if response.is_success:
        return body
    code, message = "", response.text[:200]
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping):  # Warden's ErrorV1
            code, message = str(error.get("code", "")), str(error.get("message", message))
        elif isinstance(error, str):  # RFC 6749 §5.2
            code, message = error, str(body.get("error_description", message))
    raise RemoteAPIError(
        f"warden answered {response.status_code}: {message}",
        status=response.status_code,
        error_code=code,
    )


def decision_body(response: httpx.Response) -> dict[str, Any]:
    """An AuthZEN evaluation answer, or ``DecisionUnavailableError`` (fail closed)."""
    try:
        body = read_body(response)
    except RemoteAPIError as exc:
        raise DecisionUnavailableError(f"the PDP refused the request: {exc.message}") from exc
    if not isinstance(body, dict) or not isinstance(body.get("decision"), bool):
        raise DecisionUnavailableError("the PDP answer has no boolean `decision`")
    return body


def decisions_body(response: httpx.Response, expected: int) -> list[dict[str, Any]]:
    try:
        body = read_body(response)
    except RemoteAPIError as exc:
        raise DecisionUnavailableError(f"the PDP refused the request: {exc.message}") from exc
    items = body.get("evaluations") if isinstance(body, dict) else None
    if (
        not isinstance(items, list)
        or len(items) != expected
        or not all(isinstance(i, dict) and isinstance(i.get("decision"), bool) for i in items)
    ):
        raise DecisionUnavailableError("the PDP answer has no decision for every request")
    return items
