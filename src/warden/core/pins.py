"""MCP tool pins: the definition of each upstream tool an operator approved, by digest.

A tool's **definition digest** is ``sha256:<hex>`` of the canonical JSON (sorted keys, no
spaces, UTF-8) of ``{"name", "description", "inputSchema", "annotations"}`` as the server
sends them (absent members are left out): what a model reads to decide to call the tool, and
what a poisoned or "rug-pulled" server changes. No I/O here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["PINNED_FIELDS", "ToolPin", "definition_diff", "pinned_definition", "tool_digest"]

PINNED_FIELDS = ("name", "description", "inputSchema", "annotations")
MAX_DIFF = 50


def pinned_definition(tool: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a tool definition a pin covers."""
    return {k: tool[k] for k in PINNED_FIELDS if k in tool and tool[k] is not None}


def tool_digest(tool: Mapping[str, Any]) -> str:
    canonical = json.dumps(
        pinned_definition(tool), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ToolPin:
    """An approved tool definition (and the latest different one seen, until re-approved)."""

    server: str
    tool: str
    digest: str
    definition: dict[str, Any]
    approved_by: str
    approved_at: float
    observed_digest: str | None = None
    observed_definition: dict[str, Any] | None = None
    observed_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "server": self.server,
            "tool": self.tool,
            "digest": self.digest,
            "definition": self.definition,
            "approved_by": self.approved_by,
            "approved_at": self.approved_at,
            "status": "changed" if self.observed_digest else "pinned",
        }
        if self.observed_digest:
            out["observed"] = {
                "digest": self.observed_digest,
                "definition": self.observed_definition,
                "at": self.observed_at,
                "diff": definition_diff(self.definition, self.observed_definition or {}),
            }
        return out


def definition_diff(before: Any, after: Any, path: str = "") -> list[dict[str, Any]]:
    """Leaf-level differences ``[{path, before, after}]`` (JSON-pointer paths, at most 50)."""
    out: list[dict[str, Any]] = []

    def walk(a: Any, b: Any, where: str) -> None:
        if len(out) >= MAX_DIFF or a == b:
            return
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                walk(a.get(key), b.get(key), f"{where}/{key}")
            return
        out.append({"path": where or "/", "before": a, "after": b})

    walk(before, after, path)
    return out
