"""Integrity (issue 14): agent manifest declarations and MCP tool pins."""

from __future__ import annotations

from typing import Any, Protocol

from warden.core.pins import ToolPin

__all__ = ["IntegrityStore"]


class IntegrityStore(Protocol):
    """Agent manifest declarations and MCP tool pins (trust on first use)."""

    def put_manifest_declaration(
        self, agent_name: str, declaration: dict[str, Any], *, at: float, by: str
    ) -> None: ...

    def fetch_manifest_declaration(self, agent_name: str) -> dict[str, Any]:
        """NotFoundError when the agent declares none."""
        ...

    def delete_manifest_declaration(self, agent_name: str) -> None: ...

    def list_tool_pins(self, *, server: str | None = None) -> list[ToolPin]: ...

    def fetch_tool_pin(self, server: str, tool: str) -> ToolPin: ...

    def put_tool_pin(self, pin: ToolPin) -> None:
        """Approve a definition: replaces the pin and clears what was observed."""
        ...

    def create_tool_pin(self, pin: ToolPin) -> bool:
        """Insert unless a pin exists (trust on first use): True when this call pinned."""
        ...

    def note_tool_change(
        self, server: str, tool: str, digest: str, definition: dict[str, Any], *, at: float
    ) -> bool:
        """Record a differing definition: True the first time this digest is seen."""
        ...

    def delete_tool_pin(self, server: str, tool: str) -> None: ...
