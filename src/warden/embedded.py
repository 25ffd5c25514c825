"""An embedded PDP: Warden's own decision code, in this process, over a local policy folder.

This is the server side of the SDK: it builds a whole Warden (storage, policy engine, audit
writer) in the caller's process, so it lives beside the other entry points, not in
``warden.sdk`` (the client, which imports no server package). ``warden.sdk.embedded`` re-exports
it for the programs that import it from there (ADR 0153).

``EmbeddedPDP.open(policies)`` builds a Warden (state in ``data_dir``, SQLite by default) and
answers AuthZEN requests with ``DecisionService`` — exactly what ``POST /access/v1/evaluation``
runs, with no network hop. Agent-mode requests verify task credentials this Warden issued (a
server sharing the same data folder or database issues the same ones). Policies hot-reload
from the folder; ``sync_policies`` copies a server's active policy files into it.

Each decision returns once its audit record is committed (``audit_durability="durable"``, the
default); ``EmbeddedPDP.open(..., audit_durability="async")`` answers first and may lose what is
still in memory if the process dies (at most ``audit_max_wait`` of decisions, docs/reliability.md).
When records cannot be written, decisions raise ``AuditUnavailableError`` (fail closed).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from warden.api.oauth_requests import exchange
from warden.authz.authzen import parse_evaluation
from warden.bootstrap import Warden
from warden.config import Settings
from warden.errors import DecisionUnavailableError, InvalidParameterError
from warden.sdk import _wire
from warden.sdk._wire import Decision, TaskCredential
from warden.sdk.policies import sync_policies

__all__ = ["EmbeddedPDP", "sync_policies"]


class EmbeddedPDP:
    """In-process decisions with the same API shape as the clients' ``evaluate``."""

    def __init__(self, warden: Warden, *, owned: bool = False) -> None:
        self.warden = warden
        self._owned = owned
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    @classmethod
    def open(
        cls, policies: Path | str, data_dir: Path | str | None = None, **settings: Any
    ) -> EmbeddedPDP:
        """A Warden over ``policies`` (state in ``data_dir``; a temporary folder when None)."""
        tmp = None
        if data_dir is None:
            tmp = tempfile.TemporaryDirectory(prefix="warden-embedded-")
            data_dir = tmp.name
        settings.setdefault("serves_api", False)  # in-process: no URL for replica checks
        w = Warden(Settings(data_dir=Path(data_dir), policies_dir=Path(policies), **settings))
        w.start()
        pdp = cls(w, owned=True)
        pdp._tmp = tmp
        return pdp

    def close(self) -> None:
        if self._owned:
            self.warden.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> EmbeddedPDP:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the same surface as the HTTP clients --------------------------------------------------
    def evaluate(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Decide one AuthZEN request. A malformed request is an error, never an allow."""
        try:
            ev = parse_evaluation(dict(request))
        except InvalidParameterError as exc:
            raise DecisionUnavailableError(f"malformed decision request: {exc.message}") from exc
        out = self.warden.decisions.evaluate(ev)
        return {"decision": out.allowed, "context": out.context}

    def evaluations(self, requests: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        return [self.evaluate(r) for r in requests]

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
        """Tool-pin verdicts for an MCP server's tools (see ``service.pins``); ``agent`` is the
        SPIFFE ID of the session that saw them."""
        known = self.warden.state.agents_by_spiffe.get(agent) if agent else None
        return self.warden.pins.observe(
            server,
            [dict(t) for t in tools],
            mode=mode,
            actor="pep:embedded",
            agent=known.name if known else None,
        )

    # async spellings, so either kind of caller can hold an EmbeddedPDP: a decision waits for
    # its audit commit (audit.durability: durable), so it runs in a worker thread, not the loop
    async def aevaluate(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return await asyncio.to_thread(self.evaluate, request)

    async def aevaluations(self, requests: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.evaluations, requests)

    # -- credentials, for programs that host Warden themselves ---------------------------------
    def exchange(self, subject_token: str, **kw: Any) -> TaskCredential:
        """Token exchange against this in-process Warden (same rules as ``POST /oauth2/token``)."""
        now = self.warden.clock.now()
        form = _wire.exchange_form(subject_token, **kw)
        as_lists = {k: v if isinstance(v, list) else [v] for k, v in form.items()}
        return _wire.credential_of(
            exchange(self.warden.tasks, self.warden.credentials, as_lists), now
        )
