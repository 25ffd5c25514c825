"""Typed clients for a Warden server: token exchange and renewal, decisions, tasks, leases,
approvals.

``WardenClient`` (sync) and ``AsyncWardenClient`` share every request builder and parser
(``_wire``); they differ only in how a request is sent. Decisions fail closed: a PDP that
cannot be reached, or answers without a boolean ``decision``, raises
``DecisionUnavailableError`` — never an allow.

    client = WardenClient("http://127.0.0.1:8080")
    cred = client.exchange(svid, scope=["tickets.read"], purpose="triage T-1042")
    client.decide_tool(cred.token, "tickets.read", {"ticket": "T-1042"}).enforce("tickets.read")
    db = client.create_lease(cred, "postgres", "reporting", ttl=600)  # db.dsn, once

Task calls (``end_task``, ``create_lease``, ``leases``) act as the agent when given its
``TaskCredential``, or as an operator (``operator_token``) when given a task id.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import httpx

from warden.errors import DecisionUnavailableError, RemoteAPIError
from warden.telemetry import TRACEPARENT, incoming_traceparent

from . import _wire
from ._wire import Decision, Lease, LeaseKind, TaskCredential

__all__ = ["AsyncWardenClient", "WardenClient"]

DEFAULT_TIMEOUT = 5.0
_TRANSPORT_ERRORS = (httpx.TransportError, httpx.InvalidURL)


def _headers(api_key: str | None) -> dict[str, str]:
    return {"X-API-Key": api_key} if api_key else {}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _on_task(task: TaskCredential | str, operator: str | None) -> tuple[str, dict[str, str]]:
    """(``/v1/tasks/{id}`` path, headers): the agent with its credential, or an operator."""
    if isinstance(task, TaskCredential):
        return f"/v1/tasks/{quote(task.task_id, safe='')}", _bearer(task.token)
    return f"/v1/tasks/{quote(task, safe='')}", _bearer(operator) if operator else {}


_inject: Any = None  # opentelemetry.propagate.inject, False when OpenTelemetry is not installed


def _traced(kw: dict[str, Any]) -> dict[str, Any]:
    """Forward the host application's W3C ``traceparent`` (its current OpenTelemetry span), so
    Warden's spans join the agent's own trace. Nothing when OpenTelemetry is absent or idle."""
    global _inject
    if _inject is None:
        try:
            from opentelemetry import propagate
        except ImportError:
            _inject = False
        else:
            _inject = propagate.inject
    carrier: dict[str, str] = {}
    if _inject is not False:
        _inject(carrier)
    if not carrier:
        forwarded = incoming_traceparent.get()
        if forwarded is None:
            return kw
        carrier = {TRACEPARENT: forwarded}
    return {**kw, "headers": {**carrier, **(kw.get("headers") or {})}}


class WardenClient:
    """A synchronous client. ``api_key`` authenticates this program as a PEP (when Warden is
    not bound to loopback); ``operator_token`` is for the management API (approvals)."""

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        operator_token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url.rstrip("/")
        self._operator = operator_token
        self._clock = clock
        self._http = httpx.Client(
            base_url=self.url, timeout=timeout, headers=_headers(api_key), transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> WardenClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **_traced(kw))
        except _TRANSPORT_ERRORS as exc:
            raise RemoteAPIError(
                f"warden at {self.url} is unreachable: {exc}", status=0, error_code=""
            ) from exc

    # -- task credentials ----------------------------------------------------------------------
    def exchange(self, subject_token: str, **kw: Any) -> TaskCredential:
        """Start a task: exchange a workload identity (JWT-SVID) for a task credential.

        Keywords: ``scope``, ``purpose``, ``category``, ``audience``, ``ttl``, ``on_behalf_of``,
        ``subject_token_type``, ``manifest`` (see ``_wire.exchange_form``).
        """
        now = self._clock()
        response = self._send(
            "POST", "/oauth2/token", data=_wire.exchange_form(subject_token, **kw)
        )
        return _wire.credential_of(_wire.read_body(response), now)

    def renew(
        self, credential: TaskCredential | str, *, scope: Sequence[str] | str | None = None
    ) -> TaskCredential:
        token = credential.token if isinstance(credential, TaskCredential) else credential
        now = self._clock()
        response = self._send("POST", "/oauth2/token", data=_wire.renew_form(token, scope))
        return _wire.credential_of(_wire.read_body(response), now)

    def end_task(
        self, task: TaskCredential | str, *, failed: bool = False, reason: str = ""
    ) -> Any:
        """Complete (or fail) the task; its credentials and leases are revoked with it."""
        path, headers = _on_task(task, self._operator)
        verb = "fail" if failed else "complete"
        response = self._send("POST", f"{path}/{verb}", json={"reason": reason}, headers=headers)
        return _wire.read_body(response)

    # -- leases --------------------------------------------------------------------------------
    def create_lease(
        self,
        task: TaskCredential | str,
        kind: LeaseKind,
        target: str,
        *,
        ttl: float | None = None,
    ) -> Lease:
        """A just-in-time credential for the task: a PostgreSQL login on the configured
        ``target`` (``kind="postgres"``) or a token for the downstream service ``target``
        (``kind="jwt"``). It needs ``lease.<target>`` (or the target's scope) in the task's
        scope, lives at most ``ttl`` seconds and never past the task. The secret is in this
        answer only."""
        path, headers = _on_task(task, self._operator)
        body = _wire.lease_request(kind, target, ttl)
        response = self._send("POST", f"{path}/leases", json=body, headers=headers)
        return _wire.lease_of(_wire.read_body(response))

    def leases(self, task: TaskCredential | str) -> list[Lease]:
        """The task's leases and their state (no secrets)."""
        path, headers = _on_task(task, self._operator)
        response = self._send("GET", f"{path}/leases", headers=headers)
        return _wire.leases_of(_wire.read_body(response))

    # -- decisions -----------------------------------------------------------------------------
    def evaluate(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """One AuthZEN evaluation; the raw answer. Fails closed (``DecisionUnavailableError``)."""
        try:
            response = self._http.post("/access/v1/evaluation", **_traced({"json": dict(request)}))
        except _TRANSPORT_ERRORS as exc:
            raise DecisionUnavailableError(f"the PDP at {self.url} is unreachable: {exc}") from exc
        return _wire.decision_body(response)

    def evaluations(self, requests: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Several evaluations in one round trip (AuthZEN boxcar, ``execute_all``)."""
        if not requests:
            return []
        try:
            response = self._http.post(
                "/access/v1/evaluations",
                **_traced({"json": {"evaluations": [dict(r) for r in requests]}}),
            )
        except _TRANSPORT_ERRORS as exc:
            raise DecisionUnavailableError(f"the PDP at {self.url} is unreachable: {exc}") from exc
        return _wire.decisions_body(response, len(requests))

    def decide_tool(
        self, token: str, tool: str, arguments: Mapping[str, Any] | None = None, **kw: Any
    ) -> Decision:
        return Decision.of(self.evaluate(_wire.tool_evaluation(token, tool, arguments, **kw)))

    def observe_tools(
        self,
        server: str,
        tools: Sequence[Mapping[str, Any]],
        *,
        mode: str = "enforce",
        agent: str | None = None,
    ) -> dict[str, str]:
        """Tool-pin verdicts for an MCP server's tools (``POST /v1/mcp/observe``)."""
        body = _wire.observe_body(server, tools, mode, agent)
        return _wire.verdicts_of(_wire.read_body(self._send("POST", "/v1/mcp/observe", json=body)))

    # -- approvals -----------------------------------------------------------------------------
    def approval(self, approval_id: str) -> dict[str, Any]:
        """An approval request (``GET /v1/approvals/{id}``)."""
        headers = _bearer(self._operator) if self._operator else {}
        body = _wire.read_body(self._send("GET", f"/v1/approvals/{approval_id}", headers=headers))
        return body if isinstance(body, dict) else {}


class AsyncWardenClient:
    """The asynchronous twin of ``WardenClient`` (same methods, awaitable)."""

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        operator_token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url.rstrip("/")
        self._operator = operator_token
        self._clock = clock
        self._http = httpx.AsyncClient(
            base_url=self.url, timeout=timeout, headers=_headers(api_key), transport=transport
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncWardenClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _send(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            return await self._http.request(method, path, **_traced(kw))
        except _TRANSPORT_ERRORS as exc:
            raise RemoteAPIError(
                f"warden at {self.url} is unreachable: {exc}", status=0, error_code=""
            ) from exc

    async def exchange(self, subject_token: str, **kw: Any) -> TaskCredential:
        now = self._clock()
        response = await self._send(
            "POST", "/oauth2/token", data=_wire.exchange_form(subject_token, **kw)
        )
        return _wire.credential_of(_wire.read_body(response), now)

    async def renew(
        self, credential: TaskCredential | str, *, scope: Sequence[str] | str | None = None
    ) -> TaskCredential:
        token = credential.token if isinstance(credential, TaskCredential) else credential
        now = self._clock()
        response = await self._send("POST", "/oauth2/token", data=_wire.renew_form(token, scope))
        return _wire.credential_of(_wire.read_body(response), now)

    async def end_task(
        self, task: TaskCredential | str, *, failed: bool = False, reason: str = ""
    ) -> Any:
        """Complete (or fail) the task; its credentials and leases are revoked with it."""
        path, headers = _on_task(task, self._operator)
        verb = "fail" if failed else "complete"
        response = await self._send(
            "POST", f"{path}/{verb}", json={"reason": reason}, headers=headers
        )
        return _wire.read_body(response)

    async def create_lease(
        self,
        task: TaskCredential | str,
        kind: LeaseKind,
        target: str,
        *,
        ttl: float | None = None,
    ) -> Lease:
        path, headers = _on_task(task, self._operator)
        body = _wire.lease_request(kind, target, ttl)
        response = await self._send("POST", f"{path}/leases", json=body, headers=headers)
        return _wire.lease_of(_wire.read_body(response))

    async def leases(self, task: TaskCredential | str) -> list[Lease]:
        path, headers = _on_task(task, self._operator)
        response = await self._send("GET", f"{path}/leases", headers=headers)
        return _wire.leases_of(_wire.read_body(response))

    async def evaluate(self, request: Mapping[str, Any]) -> dict[str, Any]:
        try:
            response = await self._http.post(
                "/access/v1/evaluation", **_traced({"json": dict(request)})
            )
        except _TRANSPORT_ERRORS as exc:
            raise DecisionUnavailableError(f"the PDP at {self.url} is unreachable: {exc}") from exc
        return _wire.decision_body(response)

    async def evaluations(self, requests: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        if not requests:
            return []
        try:
            response = await self._http.post(
                "/access/v1/evaluations",
                **_traced({"json": {"evaluations": [dict(r) for r in requests]}}),
            )
        except _TRANSPORT_ERRORS as exc:
            raise DecisionUnavailableError(f"the PDP at {self.url} is unreachable: {exc}") from exc
        return _wire.decisions_body(response, len(requests))

    async def decide_tool(
        self, token: str, tool: str, arguments: Mapping[str, Any] | None = None, **kw: Any
    ) -> Decision:
        return Decision.of(await self.evaluate(_wire.tool_evaluation(token, tool, arguments, **kw)))

    async def observe_tools(
        self,
        server: str,
        tools: Sequence[Mapping[str, Any]],
        *,
        mode: str = "enforce",
        agent: str | None = None,
    ) -> dict[str, str]:
        body = _wire.observe_body(server, tools, mode, agent)
        response = await self._send("POST", "/v1/mcp/observe", json=body)
        return _wire.verdicts_of(_wire.read_body(response))

    async def approval(self, approval_id: str) -> dict[str, Any]:
        headers = _bearer(self._operator) if self._operator else {}
        response = await self._send("GET", f"/v1/approvals/{approval_id}", headers=headers)
        body = _wire.read_body(response)
        return body if isinstance(body, dict) else {}
