"""The proxy over stdio: the MCP client runs ``warden mcp-proxy`` as its server.

The agent's task credential comes from the environment, as MCP prescribes for stdio: the
variable ``WARDEN_TASK_CREDENTIAL``, or a file (``--credential-file``) that is read again on
every decision, so a renewed credential takes effect at once. Upstream servers never see it.

Requests are handled concurrently (a slow tool call does not hold up a ``ping``); replies are
written whole, one per line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from warden.sdk._wire import agent_subject

from . import mapping as m
from .config import ProxyConfig
from .proxy import Gate, ProxySession

log = logging.getLogger("warden.mcp")

CREDENTIAL_ENV = "WARDEN_TASK_CREDENTIAL"
MAX_MESSAGE = 4 * 1024 * 1024


def credential_source(
    file: Path | None = None, env: str = CREDENTIAL_ENV
) -> Callable[[], dict[str, Any]]:
    """The AuthZEN subject for each decision, from the credential file or variable."""

    last: list[Any] = [None, None]  # (token, subject): decode a credential once, not per call

    def subject() -> dict[str, Any]:
        token = ""
        if file is not None:
            try:
                token = file.read_text().strip()
            except OSError:
                token = ""
        else:
            token = os.environ.get(env, "").strip()
        if token != last[0]:
            last[:] = [token, agent_subject(token)]
        return dict(last[1])

    return subject


async def serve_stdio(
    config: ProxyConfig,
    gate: Gate,
    subject: Callable[[], dict[str, Any]],
    *,
    stdin: BinaryIO | None = None,
    stdout: BinaryIO | None = None,
) -> None:
    """Serve one MCP client on stdin/stdout until stdin closes."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_MESSAGE)
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), stdin or sys.stdin.buffer
    )
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, stdout or sys.stdout.buffer
    )
    writer = asyncio.StreamWriter(transport, protocol, None, loop)

    async def send(message: dict[str, Any]) -> None:
        # one write call per message: replies never interleave
        writer.write(
            json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
        )
        await writer.drain()

    session = ProxySession(config, gate, subject, notify_client=send)
    tasks: set[asyncio.Task[None]] = set()

    async def answer(raw: bytes) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            await send(m.error_response(None, m.PARSE_ERROR, "the message is not valid JSON"))
            return
        reply = await session.handle(message)
        if reply is not None:
            await send(reply)

    try:
        while True:
            try:
                line = await reader.readline()
            except (ValueError, asyncio.LimitOverrunError):
                await send(m.error_response(None, m.INVALID_REQUEST, "the message is too large"))
                break  # the rest of an oversized line cannot be told from the next message
            if not line:
                break
            if not line.strip():
                continue
            task = asyncio.create_task(answer(line))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await session.close()
        writer.close()
