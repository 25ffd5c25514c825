"""The MCP proxy session: every client message is authorized before it reaches an upstream.

One ``ProxySession`` serves one MCP client connection (a stdio pipe, or one HTTP
``Mcp-Session-Id``) and owns its own connections to the upstream servers. ``handle(message)``
takes one decoded JSON-RPC message and returns the reply (or ``None`` for a notification).

Order of checks for a call: well-formed message → known method → valid parameters (tool name
syntax, argument size) → decision (PDP) → routing → upstream. A decision comes before routing so
a refusal cannot reveal whether a hidden tool exists. Any failure to decide is ``-32603`` and
nothing is forwarded (fail closed).

Era: the proxy speaks the ``initialize`` handshake (MCP 2025-11-25 and earlier). It answers
``server/discover`` (the 2026-07-28 probe) with "method not found", and SDK clients fall back.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import warden
from warden.errors import DecisionUnavailableError

from . import mapping as m
from .config import ProxyConfig
from .upstream import Upstream, UpstreamRPCError, UpstreamUnavailableError, connect

log = logging.getLogger("warden.mcp")

LATEST_HANDSHAKE = "2025-11-25"
MAX_PAGES = 50  # a paginating upstream that never ends cannot hang a listing

# methods that are routed but carry no per-item decision (session plumbing)
_BROADCAST = {"logging/setLevel"}


class DecisionPoint(Protocol):
    """What the proxy asks: ``WardenClient``-like ``evaluate``/``evaluations`` (sync or async)."""

    def evaluate(self, request: Mapping[str, Any]) -> Any: ...

    def evaluations(self, requests: Sequence[Mapping[str, Any]]) -> Any: ...


class PinBook(Protocol):
    """Where tool pins are checked: ``service.pins.ToolPinService.observe`` (embedded) or
    ``POST /v1/mcp/observe`` (remote): ``EmbeddedPDP`` and the SDK clients are pin books too.
    Sync or async."""

    def observe_tools(
        self, server: str, tools: list[dict[str, Any]], *, mode: str, agent: str | None
    ) -> Any: ...


class Gate:
    """Decisions for the proxy, fail closed: any error or malformed answer is ``-32603``."""

    def __init__(
        self, pdp: DecisionPoint, pins: PinBook | None = None, *, offload: bool = False
    ) -> None:
        self._pdp = pdp
        # an in-process PDP waits for its audit commit (ADR 0090): run it in a worker thread
        # so the proxy's event loop keeps serving other sessions meanwhile
        self.offload = offload
        # (kind, seconds) of each round trip to the PDP: the proxy's metrics (issue 16)
        self.observers: list[Callable[[str, float], None]] = []
        if pins is None and hasattr(pdp, "observe_tools"):
            pins = cast(PinBook, pdp)  # EmbeddedPDP and the SDK clients answer for pins too
        self._pins = pins

    @property
    def pdp(self) -> DecisionPoint:
        return self._pdp

    @property
    def pins(self) -> PinBook | None:
        return self._pins

    async def observe(
        self, server: str, tools: list[dict[str, Any]], *, mode: str, agent: str | None
    ) -> dict[str, str]:
        """Pin verdicts for an upstream's tools (``pinned``/``changed``/``unpinned``)."""
        if self._pins is None:
            raise DecisionUnavailableError("tool pinning is on but no pin book is configured")
        try:
            if self.offload:
                answer = await asyncio.to_thread(
                    self._pins.observe_tools, server, tools, mode=mode, agent=agent
                )
            else:
                answer = self._pins.observe_tools(server, tools, mode=mode, agent=agent)
            if inspect.isawaitable(answer):
                answer = await answer
        except DecisionUnavailableError:
            raise
        except Exception as exc:  # pins that cannot be checked must hide, never pass
            raise DecisionUnavailableError(f"tool pins unavailable: {type(exc).__name__}") from exc
        if not isinstance(answer, dict) or not all(isinstance(v, str) for v in answer.values()):
            raise DecisionUnavailableError("the pin verdicts are malformed")
        return answer

    async def _call(self, fn: Callable[..., Any], arg: Any) -> Any:
        started = time.perf_counter()
        try:
            answer = await asyncio.to_thread(fn, arg) if self.offload else fn(arg)
            if inspect.isawaitable(answer):
                answer = await answer
        except DecisionUnavailableError:
            raise
        except Exception as exc:  # a PDP that breaks must never turn into an allow
            raise DecisionUnavailableError(f"the PDP failed: {type(exc).__name__}") from exc
        finally:
            for observe in self.observers:
                observe(getattr(fn, "__name__", "evaluate"), time.perf_counter() - started)
        return answer

    async def decide(self, request: Mapping[str, Any]) -> dict[str, Any]:
        answer = await self._call(self._pdp.evaluate, request)
        if not isinstance(answer, dict) or not isinstance(answer.get("decision"), bool):
            raise DecisionUnavailableError("the PDP answer has no boolean `decision`")
        return answer

    async def decide_many(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not requests:
            return []
        answers = await self._call(self._pdp.evaluations, requests)
        if not isinstance(answers, list) or len(answers) != len(requests):
            raise DecisionUnavailableError("the PDP did not answer every listing request")
        for answer in answers:
            if not isinstance(answer, dict) or not isinstance(answer.get("decision"), bool):
                raise DecisionUnavailableError("the PDP answer has no boolean `decision`")
        return answers


@dataclass
class _Route:
    upstream: Upstream
    name: str  # the name upstream knows it by
    pin: str = "pinned"  # pinned | changed | unpinned (from the pin book; "pinned" when off)


# what a tool's pin verdict does to it: hidden from listings and its calls refused with this reason
_PIN_REFUSALS = {"changed": "tool_definition_changed", "unpinned": "tool_not_pinned"}


class _RPCError(Exception):
    """Stop handling and answer with this JSON-RPC error."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data


SubjectSource = Callable[[], dict[str, Any]]
ClientNotifier = Callable[[dict[str, Any]], Awaitable[None]]


class ProxySession:
    """One client connection through the proxy (see the module docstring)."""

    def __init__(
        self,
        config: ProxyConfig,
        gate: Gate,
        subject: SubjectSource,
        *,
        notify_client: ClientNotifier | None = None,
    ) -> None:
        self.config = config
        self.gate = gate
        self.subject = subject
        self._notify_client = notify_client
        self.upstreams = [connect(u, self._upstream_notification) for u in config.upstreams]
        self._by_name = {u.name: u for u in self.upstreams}
        self._tools: dict[str, _Route] | None = None
        self._tools_at = 0.0  # when the catalog was read (a call re-reads an old one)
        self._tool_defs: dict[str, dict[str, Any]] = {}
        self._prompts: dict[str, _Route] | None = None
        self._resources: dict[str, _Route] = {}
        self._initialized = False

    async def close(self) -> None:
        await asyncio.gather(*(u.close() for u in self.upstreams), return_exceptions=True)

    # -- messages ------------------------------------------------------------------------------
    async def handle(self, message: Any) -> dict[str, Any] | None:
        """Answer one decoded JSON-RPC message (``None`` for notifications and responses)."""
        if isinstance(message, list):
            return m.error_response(
                None, m.INVALID_REQUEST, "batch messages are not supported (MCP 2025-06-18+)"
            )
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            return m.error_response(None, m.INVALID_REQUEST, "not a JSON-RPC 2.0 message")
        method = message.get("method")
        request_id = message.get("id")
        if method is None:
            return None  # a response from the client: the proxy sends it no requests
        has_id = "id" in message
        if not isinstance(method, str) or (
            has_id and (isinstance(request_id, bool) or not isinstance(request_id, str | int))
        ):
            return m.error_response(
                request_id if isinstance(request_id, str | int) else None,
                m.INVALID_REQUEST,
                "`method` must be a string and `id` a string or number",
            )
        params = message.get("params", {})
        if params is None:
            params = {}
        if not isinstance(params, dict):
            return m.error_response(request_id, m.INVALID_PARAMS, "`params` must be an object")
        if not has_id:
            await self._client_notification(method, params)
            return None
        try:
            result = await self._dispatch(method, params)
        except _RPCError as reply:
            return m.error_response(request_id, reply.code, reply.message, reply.data)
        except DecisionUnavailableError as exc:
            log.warning("no decision for %s: %s", method, exc.message)
            return m.error_response(
                request_id,
                m.INTERNAL_ERROR,
                "authorization is unavailable, so the request is refused",
                {"reason": "decision_unavailable"},
            )
        except UpstreamRPCError as exc:
            return {"jsonrpc": "2.0", "id": request_id, "error": exc.error}
        except UpstreamUnavailableError as exc:
            return m.error_response(request_id, m.INTERNAL_ERROR, str(exc), {"reason": "upstream"})
        return {"jsonrpc": "2.0", "id": request_id, "result": result}

    async def _dispatch(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "ping":
            return {}
        if method == "initialize":
            return await self._initialize(params)
        if method == "server/discover":
            raise _RPCError(
                m.METHOD_NOT_FOUND,
                "the proxy speaks the initialize handshake (MCP 2025-11-25); use `initialize`",
            )
        handler = self._HANDLERS.get(method)
        if handler is None:
            raise _RPCError(
                m.DENIED,
                f"method `{method}` is not allowed through the proxy",
                {"reason": "unmapped_method"},
            )
        if not self._initialized:
            raise _RPCError(m.INVALID_REQUEST, "the session is not initialized: send `initialize`")
        result: dict[str, Any] = await handler(self, params)
        return result

    # -- lifecycle -----------------------------------------------------------------------------
    async def _initialize(self, params: dict[str, Any]) -> dict[str, Any]:
        requested = params.get("protocolVersion")
        if not isinstance(requested, str):
            raise _RPCError(m.INVALID_PARAMS, "`protocolVersion` must be a string")
        upstream_params = {
            "protocolVersion": requested,
            "capabilities": {},  # the proxy relays no server-initiated requests
            "clientInfo": {"name": "warden-mcp-proxy", "version": warden.__version__},
        }
        results = await asyncio.gather(
            *(u.initialize(dict(upstream_params)) for u in self.upstreams), return_exceptions=True
        )
        capabilities: dict[str, Any] = {}
        versions: set[str] = set()
        for upstream, result in zip(self.upstreams, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("upstream %s did not initialize: %s", upstream.name, result)
                continue
            versions.add(str(result.get("protocolVersion", requested)))
            for key in ("tools", "resources", "prompts", "logging", "completions"):
                caps = result.get("capabilities") or {}
                if isinstance(caps, dict) and key in caps:
                    capabilities[key] = {"listChanged": True} if key != "logging" else {}
        if not versions:
            raise _RPCError(m.INTERNAL_ERROR, "no upstream server could be initialized")
        self._initialized = True
        # answer with the client's version when every upstream agreed to it
        version = requested if versions == {requested} else min(versions)
        return {
            "protocolVersion": version,
            "capabilities": capabilities,
            "serverInfo": {"name": "warden-mcp-proxy", "version": warden.__version__},
            "instructions": "Every request is authorized by Warden; denied calls return -32001.",
        }

    async def _client_notification(self, method: str, params: dict[str, Any]) -> None:
        # the proxy completes the upstream handshakes itself; it relays cancellations only
        if method == "notifications/cancelled":
            log.debug("client cancelled a request: %s", params.get("requestId"))

    async def _upstream_notification(self, method: str, params: dict[str, Any]) -> None:
        if method == "notifications/tools/list_changed":
            self._tools = None
        elif method == "notifications/prompts/list_changed":
            self._prompts = None
        if self._notify_client is not None and method in (
            "notifications/tools/list_changed",
            "notifications/prompts/list_changed",
            "notifications/resources/list_changed",
            "notifications/message",
            "notifications/progress",
        ):
            await self._notify_client({"jsonrpc": "2.0", "method": method, "params": params})

    # -- helpers -------------------------------------------------------------------------------
    async def _collect(self, upstream: Upstream, method: str, key: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            result = await upstream.request(
                method, {"cursor": cursor} if cursor else {}, timeout=self.config.call_timeout
            )
            page = result.get(key)
            if isinstance(page, list):
                items.extend(i for i in page if isinstance(i, dict))
            nxt = result.get("nextCursor")
            if not isinstance(nxt, str) or not nxt:
                break
            cursor = nxt
        return items

    async def _gather(self, method: str, key: str) -> list[tuple[Upstream, dict[str, Any]]]:
        """Every upstream's items; an upstream that fails is left out (and logged)."""
        results = await asyncio.gather(
            *(self._collect(u, method, key) for u in self.upstreams), return_exceptions=True
        )
        found: list[tuple[Upstream, dict[str, Any]]] = []
        for upstream, result in zip(self.upstreams, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("upstream %s failed `%s`: %s", upstream.name, method, result)
                continue
            found.extend((upstream, item) for item in result)
        return found

    def _arguments(self, params: Mapping[str, Any]) -> dict[str, Any] | None:
        arguments = params.get("arguments")
        if arguments is None:
            return None
        if not isinstance(arguments, dict):
            raise _RPCError(m.INVALID_PARAMS, "`arguments` must be an object")
        size = len(json.dumps(arguments, separators=(",", ":")))
        if size > self.config.max_argument_bytes:
            raise _RPCError(
                m.INVALID_PARAMS,
                f"arguments are larger than {self.config.max_argument_bytes} bytes",
            )
        return arguments

    async def _enforce(self, target: str, request: dict[str, Any]) -> None:
        answer = await self.gate.decide(request)
        if not answer["decision"]:
            error = m.denial_error(target, answer)
            raise _RPCError(error["code"], error["message"], error["data"])

    # -- tools ---------------------------------------------------------------------------------
    async def _tool_catalog(self) -> dict[str, _Route]:
        """Ask every upstream for its tools; remember where each exposed name goes, and what
        the pin book says of each definition."""
        routes: dict[str, _Route] = {}
        defs: dict[str, dict[str, Any]] = {}
        offered = await self._gather("tools/list", "tools")
        verdicts = await self._pin_verdicts(offered)
        for upstream, tool in offered:
            name = tool.get("name")
            exposed = f"{upstream.config.tool_prefix}{name}"
            if not m.valid_tool_name(name) or not m.valid_tool_name(exposed):
                log.warning("upstream %s offers a tool with an unsafe name", upstream.name)
                continue
            if exposed in routes:
                log.warning("tool %s of %s is shadowed by another upstream", exposed, upstream.name)
                continue
            verdict = verdicts.get((upstream.name, str(name)), "pinned")
            routes[exposed] = _Route(upstream, str(name), verdict)
            defs[exposed] = {**tool, "name": exposed}
        self._tools, self._tool_defs = routes, defs
        self._tools_at = time.monotonic()
        return routes

    async def _pin_verdicts(
        self, offered: list[tuple[Upstream, dict[str, Any]]]
    ) -> dict[tuple[str, str], str]:
        mode = self.config.pinning_mode
        if mode == "off" or not offered:
            return {}
        by_upstream: dict[str, list[dict[str, Any]]] = {}
        for upstream, tool in offered:
            if isinstance(tool.get("name"), str):
                by_upstream.setdefault(upstream.name, []).append(tool)
        agent = self.subject().get("id") or None
        answers = await asyncio.gather(
            *(
                self.gate.observe(server, tools, mode=mode, agent=agent)
                for server, tools in by_upstream.items()
            )
        )
        return {
            (server, tool): verdict
            for server, answer in zip(by_upstream, answers, strict=True)
            for tool, verdict in answer.items()
        }

    def _pin_refusal(self, route: _Route) -> str | None:
        if route.pin == "unpinned" and self.config.pinning_mode != "require":
            return None
        return _PIN_REFUSALS.get(route.pin)

    async def list_tools(self, params: dict[str, Any]) -> dict[str, Any]:
        routes = await self._tool_catalog()
        subject = self.subject()
        names = list(routes)
        answers = await self.gate.decide_many(
            [
                m.for_listing(m.tool_request(subject, n, routes[n].upstream.name, None))
                for n in names
            ]
        )
        shown = [
            self._tool_defs[n]
            for n, answer in zip(names, answers, strict=True)
            if m.listing_verdict(answer) and self._pin_refusal(routes[n]) is None
        ]
        return {"tools": shown}

    async def call_tool(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params.get("name")
        if not m.valid_tool_name(name):
            raise _RPCError(m.INVALID_PARAMS, "`name` must be a tool name (letters, digits, . _ -)")
        assert isinstance(name, str)
        arguments = self._arguments(params)
        routes = self._tools
        if routes is None or (
            self.config.pinning_mode != "off"
            and time.monotonic() - self._tools_at > self.config.pin_recheck
        ):
            routes = await self._tool_catalog()  # a definition may have changed since
        route = routes.get(name)
        server = route.upstream.name if route else self._only_upstream_name()
        await self._enforce(name, m.tool_request(self.subject(), name, server, arguments or {}))
        if route is None:
            raise _RPCError(m.INVALID_PARAMS, f"unknown tool: {name}")
        refusal = self._pin_refusal(route)
        if refusal is not None:
            raise _RPCError(
                m.DENIED,
                f"`{name}` changed its definition since an operator approved it; it stays "
                "unavailable until re-approved (warden mcp pin)"
                if refusal == "tool_definition_changed"
                else f"`{name}` has no approved definition (warden mcp pin)",
                {"reason": refusal, "tool": name, "server": server},
            )
        forwarded = {"name": route.name, "arguments": arguments or {}}
        if isinstance(params.get("_meta"), dict):
            forwarded["_meta"] = params["_meta"]
        return await route.upstream.request(
            "tools/call", forwarded, timeout=self.config.call_timeout
        )

    def _only_upstream_name(self) -> str:
        # an unknown tool is still decided (so a deny cannot reveal what exists)
        return self.upstreams[0].name if len(self.upstreams) == 1 else "unknown"

    # -- resources -----------------------------------------------------------------------------
    async def list_resources(self, params: dict[str, Any]) -> dict[str, Any]:
        found = [
            (u, r)
            for u, r in await self._gather("resources/list", "resources")
            if isinstance(r.get("uri"), str)
        ]
        self._resources = {r["uri"]: _Route(u, r["uri"]) for u, r in found}
        subject = self.subject()
        answers = await self.gate.decide_many(
            [m.for_listing(m.resource_request(subject, r["uri"], u.name)) for u, r in found]
        )
        return {
            "resources": [
                r
                for (_, r), a in zip(found, answers, strict=True)
                if m.listing_verdict(a, takes_arguments=False)
            ]
        }

    async def list_resource_templates(self, params: dict[str, Any]) -> dict[str, Any]:
        # templates name no concrete resource; reading one is decided per URI
        found = await self._gather("resources/templates/list", "resourceTemplates")
        return {"resourceTemplates": [t for _, t in found]}

    async def _resource_call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        uri = params.get("uri")
        if not isinstance(uri, str) or not uri or len(uri) > 2048:
            raise _RPCError(m.INVALID_PARAMS, "`uri` must be a string of at most 2048 characters")
        if uri not in self._resources:
            await self.list_resources({})
        route = self._resources.get(uri)
        server = route.upstream.name if route else self._only_upstream_name()
        await self._enforce(uri, m.resource_request(self.subject(), uri, server, method))
        upstream = (
            route.upstream if route else (self.upstreams[0] if len(self.upstreams) == 1 else None)
        )
        if upstream is None:
            raise _RPCError(m.INVALID_PARAMS, f"unknown resource: {uri}")
        return await upstream.request(method, {"uri": uri}, timeout=self.config.call_timeout)

    async def read_resource(self, params: dict[str, Any]) -> dict[str, Any]:
        return await self._resource_call("resources/read", params)

    async def subscribe_resource(self, params: dict[str, Any]) -> dict[str, Any]:
        return await self._resource_call("resources/subscribe", params)

    async def unsubscribe_resource(self, params: dict[str, Any]) -> dict[str, Any]:
        uri = params.get("uri")
        route = self._resources.get(uri) if isinstance(uri, str) else None
        if route is None:
            return {}
        return await route.upstream.request("resources/unsubscribe", {"uri": uri})

    # -- prompts -------------------------------------------------------------------------------
    async def _prompt_routes(self) -> tuple[dict[str, _Route], dict[str, dict[str, Any]]]:
        routes: dict[str, _Route] = {}
        defs: dict[str, dict[str, Any]] = {}
        for upstream, prompt in await self._gather("prompts/list", "prompts"):
            name = prompt.get("name")
            if isinstance(name, str) and name not in routes:
                routes[name] = _Route(upstream, name)
                defs[name] = prompt
        self._prompts = routes
        return routes, defs

    async def list_prompts(self, params: dict[str, Any]) -> dict[str, Any]:
        routes, defs = await self._prompt_routes()
        subject = self.subject()
        names = list(routes)
        answers = await self.gate.decide_many(
            [
                m.for_listing(m.prompt_request(subject, n, routes[n].upstream.name, None))
                for n in names
            ]
        )
        return {
            "prompts": [
                defs[n] for n, a in zip(names, answers, strict=True) if m.listing_verdict(a)
            ]
        }

    async def get_prompt(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params.get("name")
        if not isinstance(name, str) or not name or len(name) > 256:
            raise _RPCError(m.INVALID_PARAMS, "`name` must be a prompt name")
        arguments = self._arguments(params)
        routes = self._prompts if self._prompts is not None else (await self._prompt_routes())[0]
        route = routes.get(name)
        server = route.upstream.name if route else self._only_upstream_name()
        await self._enforce(name, m.prompt_request(self.subject(), name, server, arguments or {}))
        if route is None:
            raise _RPCError(m.INVALID_PARAMS, f"unknown prompt: {name}")
        forwarded: dict[str, Any] = {"name": name}
        if arguments is not None:
            forwarded["arguments"] = arguments
        return await route.upstream.request(
            "prompts/get", forwarded, timeout=self.config.call_timeout
        )

    # -- session plumbing ----------------------------------------------------------------------
    async def set_level(self, params: dict[str, Any]) -> dict[str, Any]:
        await asyncio.gather(
            *(u.request("logging/setLevel", params) for u in self.upstreams), return_exceptions=True
        )
        return {}

    _HANDLERS: dict[str, Callable[[ProxySession, dict[str, Any]], Awaitable[dict[str, Any]]]] = {
        "tools/list": list_tools,
        "tools/call": call_tool,
        "resources/list": list_resources,
        "resources/templates/list": list_resource_templates,
        "resources/read": read_resource,
        "resources/subscribe": subscribe_resource,
        "resources/unsubscribe": unsubscribe_resource,
        "prompts/list": list_prompts,
        "prompts/get": get_prompt,
        "logging/setLevel": set_level,
    }
