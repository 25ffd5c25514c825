"""Connections to upstream MCP servers: a subprocess over stdio, or a Streamable HTTP endpoint.

An ``Upstream`` sends JSON-RPC requests and returns their ``result``; a JSON-RPC error from the
server raises ``UpstreamRPCError`` (passed on to the client as is); a server that hangs,
crashes or cannot be reached raises ``UpstreamUnavailableError`` (the proxy answers ``-32603``
and stays up). A crashed stdio server is started again, and re-initialised, on its next use.
Requests the server sends to the client (sampling, elicitation, roots) are refused: the proxy
does not relay server-initiated requests (COAZ-MCP leaves them out of scope).

Upstreams never see the agent's credential: a stdio server gets only the environment its
configuration names (plus ``PATH``), an HTTP server only its configured headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import httpx

from .config import UpstreamConfig

log = logging.getLogger("warden.mcp")

MAX_LINE = 16 * 1024 * 1024
STARTUP_TIMEOUT = 30.0  # a server's first answer includes its start-up (imports, connections)
NotificationHandler = Callable[[str, dict[str, Any]], Awaitable[None]]
_BASE_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "PYTHONPATH", "VIRTUAL_ENV", "SYSTEMROOT", "TMPDIR")


_SESSION_LOST = object()  # the server answered 404 for our session


class UpstreamUnavailableError(Exception):
    """The upstream did not answer (crashed, hung, unreachable, or answered garbage)."""


class UpstreamRPCError(Exception):
    """The upstream answered with a JSON-RPC error object."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(str(error.get("message", "upstream error")))
        self.error = error


def _result_of(message: Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(message.get("error"), dict):
        raise UpstreamRPCError(message["error"])
    result = message.get("result")
    if not isinstance(result, dict):
        raise UpstreamUnavailableError("the upstream answered without a result")
    return result


class Upstream:
    """Common request bookkeeping; subclasses move bytes."""

    def __init__(self, config: UpstreamConfig, on_notification: NotificationHandler | None) -> None:
        self.config = config
        self.name = config.name
        self._on_notification = on_notification
        self._ids = itertools.count(1)
        self._init_params: dict[str, Any] | None = None
        self.initialize_result: dict[str, Any] | None = None

    async def initialize(self, params: dict[str, Any]) -> dict[str, Any]:
        """Run the initialize handshake; remembered so a restarted server is re-initialised."""
        self._init_params = params
        timeout = max(self.config.timeout, STARTUP_TIMEOUT)
        result = await self.request("initialize", params, timeout=timeout)
        await self.notify("notifications/initialized", {})
        self.initialize_result = result
        return result

    async def request(
        self, method: str, params: dict[str, Any] | None, *, timeout: float | None = None
    ) -> dict[str, Any]:
        raise NotImplementedError

    async def notify(self, method: str, params: dict[str, Any] | None) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def _deliver(self, message: dict[str, Any]) -> dict[str, Any] | None:
        """A message the server sent on its own: notifications go up; requests are refused."""
        method = message.get("method")
        if not isinstance(method, str):
            return None
        if "id" in message:
            return {
                "jsonrpc": "2.0",
                "id": message["id"],
                "error": {"code": -32601, "message": f"`{method}` is not relayed by the proxy"},
            }
        if self._on_notification is not None:
            params = message.get("params")
            await self._on_notification(method, params if isinstance(params, dict) else {})
        return None


class StdioUpstream(Upstream):
    """An MCP server run as a subprocess, one JSON-RPC message per line."""

    def __init__(self, config: UpstreamConfig, on_notification: NotificationHandler | None) -> None:
        super().__init__(config, on_notification)
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._write_lock = asyncio.Lock()
        self._start_lock = asyncio.Lock()

    def _env(self) -> dict[str, str]:
        env = {k: os.environ[k] for k in _BASE_ENV if k in os.environ}
        env.update(self.config.env)
        return env

    async def _ensure_started(self) -> asyncio.subprocess.Process:
        process = self._process
        if process is not None and process.returncode is None:
            return process  # the common case, without the lock
        async with self._start_lock:
            process = self._process
            if process is not None and process.returncode is None:
                return process
            restarted = process is not None
            command = self.config.command
            try:
                process = await asyncio.create_subprocess_exec(
                    command[0],
                    *command[1:],
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=None,  # the server's own log goes to ours
                    env=self._env(),
                    cwd=self.config.cwd,
                    limit=MAX_LINE,
                )
            except OSError as exc:
                raise UpstreamUnavailableError(f"cannot start `{command[0]}`: {exc}") from exc
            self._process = process
            self._reader = asyncio.create_task(self._read(process), name=f"upstream-{self.name}")
        if restarted and self._init_params is not None:
            log.warning("upstream %s restarted after it exited", self.name)
            await self.initialize(self._init_params)
        return process

    async def _read(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        try:
            while True:
                try:
                    line = await process.stdout.readline()
                except (ValueError, asyncio.LimitOverrunError):
                    log.warning("upstream %s sent an oversized line; dropping it", self.name)
                    continue
                if not line:
                    break
                try:
                    message = json.loads(line)
                except ValueError:
                    log.warning("upstream %s wrote a line that is not JSON", self.name)
                    continue
                if not isinstance(message, dict):
                    continue
                if "method" in message:
                    reply = await self._deliver(message)
                    if reply is not None:
                        await self._write(process, reply)
                    continue
                future = self._pending.pop(message.get("id"), None)  # type: ignore[arg-type]
                if future is not None and not future.done():
                    future.set_result(message)
        finally:
            with contextlib.suppress(ProcessLookupError):
                await process.wait()
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(
                        UpstreamUnavailableError(
                            f"upstream `{self.name}` exited (code {process.returncode})"
                        )
                    )
            self._pending.clear()

    async def _write(self, process: asyncio.subprocess.Process, message: dict[str, Any]) -> None:
        assert process.stdin is not None
        data = json.dumps(message, separators=(",", ":")).encode() + b"\n"
        async with self._write_lock:
            try:
                process.stdin.write(data)
                await process.stdin.drain()
            except (BrokenPipeError, ConnectionResetError) as exc:
                raise UpstreamUnavailableError(f"upstream `{self.name}` is gone") from exc

    async def request(
        self, method: str, params: dict[str, Any] | None, *, timeout: float | None = None
    ) -> dict[str, Any]:
        process = await self._ensure_started()
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        try:
            await self._write(process, message)
            answer = await asyncio.wait_for(future, timeout or self.config.timeout)
        except TimeoutError:
            await self._cancel(process, request_id)
            raise UpstreamUnavailableError(
                f"upstream `{self.name}` did not answer `{method}` within "
                f"{timeout or self.config.timeout:g} s"
            ) from None
        finally:
            self._pending.pop(request_id, None)
        return _result_of(answer)

    async def _cancel(self, process: asyncio.subprocess.Process, request_id: int) -> None:
        with contextlib.suppress(UpstreamUnavailableError):
            await self._write(
                process,
                {
                    "jsonrpc": "2.0",
                    "method": "notifications/cancelled",
                    "params": {"requestId": request_id, "reason": "timed out at the proxy"},
                },
            )

    async def notify(self, method: str, params: dict[str, Any] | None) -> None:
        process = await self._ensure_started()
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        await self._write(process, message)

    async def close(self) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(Exception):
            assert process.stdin is not None
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), 2)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 2)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader


class HTTPUpstream(Upstream):
    """An MCP server over Streamable HTTP (JSON or SSE answers, ``Mcp-Session-Id`` kept)."""

    def __init__(self, config: UpstreamConfig, on_notification: NotificationHandler | None) -> None:
        super().__init__(config, on_notification)
        assert config.url is not None
        self._url = config.url
        self._session: str | None = None
        self._version: str | None = None
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(config.timeout, connect=5.0))

    def _headers(self) -> dict[str, str]:
        headers = {
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
            **self.config.headers,
        }
        if self._session:
            headers["Mcp-Session-Id"] = self._session
        if self._version:
            headers["MCP-Protocol-Version"] = self._version
        return headers

    async def initialize(self, params: dict[str, Any]) -> dict[str, Any]:
        self._session = None
        result = await super().initialize(params)
        version = result.get("protocolVersion")
        self._version = version if isinstance(version, str) else None
        return result

    async def _post(self, message: dict[str, Any], timeout: float) -> httpx.Response:
        try:
            response = await self._http.post(
                self._url, json=message, headers=self._headers(), timeout=timeout
            )
        except httpx.TimeoutException as exc:
            raise UpstreamUnavailableError(
                f"upstream `{self.name}` did not answer within {timeout:g} s"
            ) from exc
        except httpx.HTTPError as exc:
            raise UpstreamUnavailableError(f"upstream `{self.name}` is unreachable: {exc}") from exc
        session = response.headers.get("mcp-session-id")
        if session:
            self._session = session
        return response

    async def request(
        self, method: str, params: dict[str, Any] | None, *, timeout: float | None = None
    ) -> dict[str, Any]:
        request_id = next(self._ids)
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        limit = timeout or self.config.timeout
        try:
            # the whole exchange, SSE stream included, within the call's time limit
            answer = await asyncio.wait_for(self._exchange(message, request_id, limit), limit)
            if answer is _SESSION_LOST and self._init_params is not None:
                # the server forgot our session (restart, idle expiry): start a new one, once
                await self.initialize(self._init_params)
                answer = await asyncio.wait_for(self._exchange(message, request_id, limit), limit)
        except TimeoutError:
            raise UpstreamUnavailableError(
                f"upstream `{self.name}` did not answer `{method}` within {limit:g} s"
            ) from None
        if answer is _SESSION_LOST:
            raise UpstreamUnavailableError(f"upstream `{self.name}` answered HTTP 404")
        if not isinstance(answer, dict):
            raise UpstreamUnavailableError(f"upstream `{self.name}` answered a non-object")
        return _result_of(answer)

    async def _exchange(self, message: dict[str, Any], request_id: int, limit: float) -> Any:
        """POST one request; its answer (JSON, or the matching event of an SSE stream whose
        notifications are relayed as they arrive)."""
        try:
            async with self._http.stream(
                "POST", self._url, json=message, headers=self._headers(), timeout=limit
            ) as response:
                session = response.headers.get("mcp-session-id")
                if session:
                    self._session = session
                if response.status_code == 404 and self._session:
                    return _SESSION_LOST
                if response.status_code >= 400:
                    raise UpstreamUnavailableError(
                        f"upstream `{self.name}` answered HTTP {response.status_code}"
                    )
                kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
                if kind == "text/event-stream":
                    return await self._from_events(response.aiter_lines(), request_id)
                body = await response.aread()
        except httpx.TimeoutException as exc:
            raise UpstreamUnavailableError(
                f"upstream `{self.name}` did not answer within {limit:g} s"
            ) from exc
        except httpx.HTTPError as exc:
            raise UpstreamUnavailableError(f"upstream `{self.name}` is unreachable: {exc}") from exc
        try:
            return json.loads(body)
        except ValueError:
            raise UpstreamUnavailableError(
                f"upstream `{self.name}` answered with something that is not JSON"
            ) from None

    async def _from_events(self, lines: AsyncIterator[str], request_id: int) -> Any:
        """Read SSE events until our response; relay notifications as they come."""
        data: list[str] = []
        async for line in lines:
            if line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
                continue
            if line or not data:
                continue
            try:
                message = json.loads("\n".join(data))
            except ValueError:
                message = None
            data = []
            if not isinstance(message, dict):
                continue
            if "method" in message:
                await self._deliver(message)
            elif message.get("id") == request_id:
                return message
        raise UpstreamUnavailableError(f"upstream `{self.name}` sent no response event")

    async def notify(self, method: str, params: dict[str, Any] | None) -> None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        await self._post(message, self.config.timeout)

    async def close(self) -> None:
        if self._session:
            with contextlib.suppress(httpx.HTTPError):
                await self._http.delete(self._url, headers=self._headers(), timeout=2)
        await self._http.aclose()


def connect(config: UpstreamConfig, on_notification: NotificationHandler | None = None) -> Upstream:
    if config.url is not None:
        return HTTPUpstream(config, on_notification)
    return StdioUpstream(config, on_notification)
