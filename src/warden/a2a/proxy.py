"""An A2A enforcement point: Warden in front of one Agent2Agent server (JSON-RPC binding).

    GET  /.well-known/agent-card.json   the target's Agent Card, re-pointed at this proxy and
                                        declaring Warden's security scheme (Bearer task credential)
    POST /a2a                           A2A JSON-RPC; each request decided, then forwarded

Every JSON-RPC request needs ``Authorization: Bearer <task credential>`` whose audience is this
proxy (``resource``): without one it is ``401`` with ``WWW-Authenticate``. The credential is
checked here (signature with Warden's published keys, issuer, audience, expiry) and by the PDP
on every decision (revocation, task and agent live, scope). Each A2A operation is a Cedar action
on the target agent (resource ``A2AAgent::"<target>"``, ``context.a2a = {operation, skill,
target, task_id, context_id}``):

============================================  ======================================
``SendMessage``, ``SendStreamingMessage``     ``a2a.skill.<id>`` when the message names a skill
                                              (``metadata.skill``, or the card has only one),
                                              else ``a2a.message.send``
``GetTask`` / ``ListTasks``                   ``a2a.tasks.get`` / ``a2a.tasks.list``
``CancelTask`` / ``SubscribeToTask``          ``a2a.tasks.cancel`` / ``a2a.tasks.subscribe``
``…TaskPushNotificationConfig…``              ``a2a.tasks.push_config``
``GetExtendedAgentCard``                      ``a2a.card.extended``
============================================  ======================================

A deny is a JSON-RPC error ``-32040`` (outside A2A's own codes; ``data = {reason, decision_id,
policies}``); no decision is ``-32603`` (fail closed). An allowed request goes to the target
byte for byte (streams stay streams) with the caller's credential removed and
``X-Warden-Agent``, ``X-Warden-Task``,
``X-Warden-Chain`` (the delegation chain, root first, comma separated) and
``X-Warden-Decision`` added, so the target — and its own delegations — can attribute the hop.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from warden.core.reasons import deny_reason
from warden.errors import DecisionUnavailableError, TokenInvalidError
from warden.tokens.verifier import TaskCredentialVerifier, VerifiedCredential

log = logging.getLogger("warden.a2a")

CARD_PATH = "/.well-known/agent-card.json"
RPC_PATH = "/a2a"
MAX_BODY = 4 * 1024 * 1024
CARD_TTL = 60.0
SCHEME = "warden"
# -32001…-32009 are A2A's own errors (TaskNotFound…): a Warden deny must not read as one of them
DENIED, INTERNAL_ERROR, INVALID_REQUEST, PARSE_ERROR = -32040, -32603, -32600, -32700

_TASK_ACTIONS = {
    "GetTask": "a2a.tasks.get",
    "ListTasks": "a2a.tasks.list",
    "CancelTask": "a2a.tasks.cancel",
    "SubscribeToTask": "a2a.tasks.subscribe",
    "CreateTaskPushNotificationConfig": "a2a.tasks.push_config",
    "GetTaskPushNotificationConfig": "a2a.tasks.push_config",
    "ListTaskPushNotificationConfigs": "a2a.tasks.push_config",
    "DeleteTaskPushNotificationConfig": "a2a.tasks.push_config",
    "GetExtendedAgentCard": "a2a.card.extended",
}
_MESSAGE_OPERATIONS = {"SendMessage", "SendStreamingMessage"}
_FORWARDED = ("content-type", "accept", "a2a-version", "a2a-extensions")


@dataclass(frozen=True)
class A2AProxyConfig:
    """``target``: the A2A server's name (the resource id) and base URL; ``resource``: this
    proxy's URL (the audience its credentials need)."""

    target_name: str
    target_url: str
    resource: str
    timeout: float = 60.0
    card_url: str | None = None  # default: <target_url>/.well-known/agent-card.json


def operation_action(operation: str, skill: str | None) -> str | None:
    """The Cedar action for an A2A operation (None: not an operation the proxy knows)."""
    if operation in _MESSAGE_OPERATIONS:
        return f"a2a.skill.{skill}" if skill else "a2a.message.send"
    return _TASK_ACTIONS.get(operation)


def _skill_of(params: Mapping[str, Any], card: Mapping[str, Any]) -> str | None:
    message = params.get("message")
    for meta in (
        message.get("metadata") if isinstance(message, Mapping) else None,
        params.get("metadata"),
    ):
        if isinstance(meta, Mapping) and isinstance(meta.get("skill"), str):
            return str(meta["skill"])
    skills = card.get("skills") or []
    if len(skills) == 1 and isinstance(skills[0], Mapping):
        only = skills[0].get("id")
        return str(only) if isinstance(only, str) else None
    return None


def _error(request_id: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


@dataclass
class _Card:
    body: dict[str, Any] = field(default_factory=dict)
    at: float = 0.0


def warden_card(card: Mapping[str, Any], *, resource: str, issuer: str) -> dict[str, Any]:
    """The target's card as this proxy serves it: its interfaces point here (JSON-RPC only), it
    requires Warden's scheme, and any signature is dropped (it no longer holds)."""
    out = {k: v for k, v in card.items() if k != "signatures"}
    version = "1.0"
    for interface in card.get("supportedInterfaces") or []:
        if isinstance(interface, Mapping) and interface.get("protocolBinding") == "JSONRPC":
            version = str(interface.get("protocolVersion") or version)
    out["supportedInterfaces"] = [
        {"url": resource, "protocolBinding": "JSONRPC", "protocolVersion": version}
    ]
    out["securitySchemes"] = {
        SCHEME: {
            "httpAuthSecurityScheme": {
                "scheme": "Bearer",
                "bearerFormat": "JWT",
                "description": (
                    f"a Warden task credential for audience {resource}, from the token "
                    f"exchange at {issuer}/oauth2/token (RFC 8693)"
                ),
            }
        }
    }
    out["securityRequirements"] = [{"schemes": {SCHEME: {"list": []}}}]
    return out


def create_a2a_proxy_app(
    config: A2AProxyConfig, pdp: Any, verifier: TaskCredentialVerifier, *, issuer: str
) -> Starlette:
    """The proxy: ``pdp`` has ``evaluate`` (sync or async: ``EmbeddedPDP``, the SDK clients)."""
    http = httpx.AsyncClient(timeout=httpx.Timeout(config.timeout, connect=5.0))
    card_url = config.card_url or f"{config.target_url.rstrip('/')}{CARD_PATH}"
    cached = _Card()
    rpc_path = urlsplit(config.resource).path or RPC_PATH

    async def target_card() -> dict[str, Any]:
        if cached.body and time.monotonic() - cached.at < CARD_TTL:
            return cached.body
        try:
            response = await http.get(card_url, headers={"Accept": "application/json"})
            body = response.raise_for_status().json()
        except (httpx.HTTPError, ValueError) as exc:
            raise DecisionUnavailableError(f"cannot read the target's agent card: {exc}") from exc
        if not isinstance(body, dict):
            raise DecisionUnavailableError("the target's agent card is not an object")
        cached.body, cached.at = body, time.monotonic()
        return body

    def rpc_url(card: Mapping[str, Any]) -> str:
        for interface in card.get("supportedInterfaces") or []:
            if isinstance(interface, Mapping) and interface.get("protocolBinding") == "JSONRPC":
                return str(interface["url"])
        return config.target_url

    async def agent_card(request: Request) -> Response:
        try:
            card = await target_card()
        except DecisionUnavailableError as exc:
            return _json({"error": "target_unavailable", "error_description": exc.message}, 502)
        return _json(warden_card(card, resource=config.resource, issuer=issuer))

    def challenge(error: str | None = None) -> Response:
        value = f'Bearer realm="warden", resource="{config.resource}"'
        if error:
            value += f', error="{error}"'
        return _json(
            {"error": error or "unauthorized", "error_description": "a task credential is needed"},
            401,
            {"WWW-Authenticate": value},
        )

    async def decide(body: dict[str, Any]) -> dict[str, Any]:
        try:
            answer = pdp.evaluate(body)
            if inspect.isawaitable(answer):
                answer = await answer
        except Exception as exc:  # a PDP that fails never turns into an allow
            raise DecisionUnavailableError(f"the PDP failed: {type(exc).__name__}") from exc
        if not isinstance(answer, dict) or not isinstance(answer.get("decision"), bool):
            raise DecisionUnavailableError("the PDP answer has no boolean `decision`")
        return answer

    async def rpc(request: Request) -> Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return challenge()
        try:
            cred: VerifiedCredential = verifier.verify(token)
        except TokenInvalidError:
            return challenge("invalid_token")
        raw = await request.body()
        if len(raw) > MAX_BODY:
            return _json(_error(None, INVALID_REQUEST, "the request is too large"), 413)
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return _json(_error(None, PARSE_ERROR, "the body is not valid JSON"), 400)
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            return _json(_error(None, INVALID_REQUEST, "not a JSON-RPC 2.0 request"), 400)
        request_id = message.get("id")
        operation = message.get("method")
        params = message.get("params") or {}
        if not isinstance(operation, str) or not isinstance(params, dict):
            return _json(_error(request_id, INVALID_REQUEST, "`method` and `params` are needed"))
        try:
            card = await target_card()
        except DecisionUnavailableError as exc:
            log.warning("no agent card: %s", exc.message)
            return _json(
                _error(
                    request_id, INTERNAL_ERROR, "the target is unavailable", {"reason": "upstream"}
                )
            )
        skill = _skill_of(params, card) if operation in _MESSAGE_OPERATIONS else None
        action = operation_action(operation, skill)
        if action is None:
            return _json(
                _error(
                    request_id,
                    DENIED,
                    f"A2A method `{operation}` is not allowed through the proxy",
                    {"reason": "unmapped_method"},
                )
            )
        a2a: dict[str, Any] = {"operation": operation, "target": config.target_name}
        if skill:
            a2a["skill"] = skill
        for key, name in (("id", "task_id"), ("taskId", "task_id"), ("contextId", "context_id")):
            source = params.get("message") if key == "contextId" else params
            value = source.get(key) if isinstance(source, Mapping) else None
            if isinstance(value, str):
                a2a[name] = value
        evaluation = {
            "subject": {"type": "agent", "id": cred.subject, "properties": {"token": token}},
            "action": {"name": action},
            "resource": {"type": "A2AAgent", "id": config.target_name},
            "context": {"a2a": a2a},
        }
        try:
            answer = await decide(evaluation)
        except DecisionUnavailableError as exc:
            log.warning("no decision for %s: %s", operation, exc.message)
            return _json(
                _error(
                    request_id,
                    INTERNAL_ERROR,
                    "authorization is unavailable, so the request is refused",
                    {"reason": "decision_unavailable"},
                )
            )
        context = answer.get("context") or {}
        if not answer["decision"]:
            reason = deny_reason(context)
            return _json(
                _error(
                    request_id,
                    DENIED,
                    f"`{action}` on agent `{config.target_name}` is denied",
                    {
                        "reason": reason,
                        "decision_id": context.get("decision_id"),
                        "policies": [p for p in context.get("reasons") or [] if isinstance(p, str)],
                    },
                )
            )
        headers = {k: v for k, v in request.headers.items() if k.lower() in _FORWARDED}
        headers.update(
            {
                "X-Warden-Agent": cred.subject,
                "X-Warden-Task": cred.task_id,
                "X-Warden-Chain": ",".join(_chain(cred)),
                "X-Warden-Decision": str(context.get("decision_id", "")),
            }
        )
        return await forward(rpc_url(card), raw, headers)

    async def forward(url: str, raw: bytes, headers: dict[str, str]) -> Response:
        try:
            upstream = await http.send(
                http.build_request("POST", url, content=raw, headers=headers), stream=True
            )
        except httpx.HTTPError as exc:
            return _json(
                _error(
                    None,
                    INTERNAL_ERROR,
                    f"the target is unreachable: {exc}",
                    {"reason": "upstream"},
                )
            )
        kind = upstream.headers.get("content-type", "application/json")

        async def body() -> AsyncIterator[bytes]:
            try:
                async for chunk in upstream.aiter_raw():
                    yield chunk
            finally:
                await upstream.aclose()

        return StreamingResponse(body(), upstream.status_code, media_type=kind.split(";")[0])

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await http.aclose()

    return Starlette(
        routes=[
            Route(CARD_PATH, agent_card, methods=["GET"]),
            Route(rpc_path, rpc, methods=["POST"]),
        ],
        lifespan=lifespan,
    )


def _chain(cred: VerifiedCredential) -> list[str]:
    """The delegation chain, root first, ending with the caller."""
    return [*reversed(cred.actors), cred.subject]
