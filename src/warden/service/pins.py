"""MCP tool pinning: an operator approves each upstream tool's definition; a change is caught.

``pin`` records the definition digest (``core.pins``) of tools an operator approves (``warden
mcp pin``). A proxy reports what a server offers with ``observe`` and gets one verdict per tool:

- ``pinned``: the definition is the approved one;
- ``changed``: it differs from the approved one — the proxy hides the tool and refuses its calls
  (``tool_definition_changed``) until an operator pins the new definition. The first sighting of
  each new digest is audited (``mcp.tool_definition_changed``, with a diff) and raises a
  finding (detector ``tool_definition_changed``, severity high);
- ``unpinned``: no pin. With ``mode="tofu"`` (development) the first definition seen is pinned
  on the spot (audited ``mcp.tool_pinned``, ``by: tofu``) and the verdict is ``pinned``; with
  ``require`` the proxy hides it; with ``enforce`` (the default) it passes.

Pins are rows in the database, so every replica — and every proxy asking any replica — agrees.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from warden.core.clock import Clock
from warden.core.ids import new_id
from warden.core.model import Finding, Severity
from warden.core.pins import ToolPin, definition_diff, pinned_definition, tool_digest
from warden.core.ports import Store
from warden.errors import InvalidParameterError
from warden.service.auditing import Auditor

__all__ = ["MODES", "PINNED", "ToolPinService"]

log = logging.getLogger("warden.pins")

MODES = ("enforce", "tofu", "require")
PINNED, CHANGED, UNPINNED = "pinned", "changed", "unpinned"
MAX_TOOLS = 1000
DETECTOR = "tool_definition_changed"


def _server(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > 64:
        raise InvalidParameterError("`server` must be the upstream's name")
    return value


def _tools(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or len(value) > MAX_TOOLS:
        raise InvalidParameterError(f"`tools` must be a list of at most {MAX_TOOLS} definitions")
    tools: list[dict[str, Any]] = []
    for item in value:
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            raise InvalidParameterError("each tool definition needs a `name`")
        if not item["name"] or len(item["name"]) > 256:
            raise InvalidParameterError("a tool `name` must be 1 to 256 characters")
        tools.append(dict(item))
    return tools


class ToolPinService:
    def __init__(self, store: Store, auditor: Auditor, clock: Clock) -> None:
        self._store = store
        self._audit = auditor
        self._clock = clock

    def list_pins(self, server: str | None = None) -> list[ToolPin]:
        return self._store.list_tool_pins(server=server)

    def pin(
        self,
        server: Any,
        tools: Any,
        *,
        actor: str,
        only: Iterable[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Approve the given definitions (all, or the names in ``only``); returns what changed."""
        server = _server(server)
        wanted = set(only) if only is not None else None
        current = {p.tool: p for p in self._store.list_tool_pins(server=server)}
        now = self._clock.now()
        out: list[dict[str, Any]] = []
        for tool in _tools(tools):
            name = tool["name"]
            if wanted is not None and name not in wanted:
                continue
            definition = pinned_definition(tool)
            digest = tool_digest(tool)
            before = current.get(name)
            if before is not None and before.digest == digest and before.observed_digest is None:
                out.append({"tool": name, "digest": digest, "status": "unchanged"})
                continue
            self._store.put_tool_pin(ToolPin(server, name, digest, definition, actor, now))
            diff = definition_diff(before.definition, definition) if before else []
            self._audit.record(
                "mcp.tool_pinned",
                actor,
                {
                    "server": server,
                    "tool": name,
                    "digest": digest,
                    "previous_digest": before.digest if before else None,
                    "diff": diff,
                },
            )
            out.append(
                {"tool": name, "digest": digest, "status": "repinned" if before else "pinned"}
            )
        if wanted is not None and not wanted <= {o["tool"] for o in out}:
            missing = sorted(wanted - {o["tool"] for o in out})
            raise InvalidParameterError(f"server `{server}` offers no tool `{missing[0]}`")
        return out

    def unpin(self, server: str, tool: str, *, actor: str) -> None:
        self._store.delete_tool_pin(server, tool)
        self._audit.record("mcp.tool_unpinned", actor, {"server": server, "tool": tool})

    def observe(
        self,
        server: Any,
        tools: Any,
        *,
        mode: str = "enforce",
        actor: str = "pep",
        agent: str | None = None,
    ) -> dict[str, str]:
        """One verdict per offered tool (see the module docstring)."""
        if mode not in MODES:
            raise InvalidParameterError(f"`mode` must be one of {', '.join(MODES)}")
        server = _server(server)
        offered = _tools(tools)
        pins = {p.tool: p for p in self._store.list_tool_pins(server=server)}
        now = self._clock.now()
        verdicts: dict[str, str] = {}
        for tool in offered:
            name = tool["name"]
            digest = tool_digest(tool)
            pin = pins.get(name)
            if pin is not None and pin.digest == digest:
                verdicts[name] = PINNED
            elif pin is not None:
                verdicts[name] = CHANGED
                definition = pinned_definition(tool)
                if self._store.note_tool_change(server, name, digest, definition, at=now):
                    self._changed(pin, digest, definition, actor=actor, agent=agent, now=now)
            elif mode == "tofu":
                fresh = ToolPin(server, name, digest, pinned_definition(tool), "tofu", now)
                if self._store.create_tool_pin(fresh):
                    self._audit.record(
                        "mcp.tool_pinned",
                        "tofu",
                        {"server": server, "tool": name, "digest": digest, "via": actor},
                    )
                    verdicts[name] = PINNED
                else:  # another replica pinned it first: judge against that pin
                    raced = self._store.fetch_tool_pin(server, name)
                    verdicts[name] = PINNED if raced.digest == digest else CHANGED
            else:
                verdicts[name] = UNPINNED
        return verdicts

    def _changed(
        self,
        pin: ToolPin,
        digest: str,
        definition: dict[str, Any],
        *,
        actor: str,
        agent: str | None,
        now: float,
    ) -> None:
        diff = definition_diff(pin.definition, definition)
        facts = {
            "server": pin.server,
            "tool": pin.tool,
            "pinned_digest": pin.digest,
            "observed_digest": digest,
            "diff": diff,
        }
        log.warning("tool %s of %s changed its definition after approval", pin.tool, pin.server)
        self._audit.record("mcp.tool_definition_changed", actor, facts, agent=agent)
        changed = sorted({d["path"].split("/")[1] for d in diff if d["path"].count("/")})
        finding = Finding(
            id=new_id("fnd"),
            agent=agent or f"mcp:{pin.server}",
            detector=DETECTOR,
            severity=Severity.HIGH,
            summary=(
                f"tool `{pin.tool}` of MCP server `{pin.server}` changed its "
                f"{', '.join(changed) or 'definition'} after approval; hidden until re-pinned"
            ),
            created_at=now,
            facts=facts,
        )
        try:
            self._store.create_findings([finding])
        except Exception:  # the audit record above already holds the change
            log.exception("could not store the tool-change finding")


def pins_view(pins: Sequence[ToolPin]) -> list[dict[str, Any]]:
    return [p.to_json() for p in pins]
