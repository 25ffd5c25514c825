"""Store methods for integrity: agent manifest declarations and MCP tool pins. Part of
``SQLStore``; same rules (one transaction per method, translated driver errors). Pins live in
the database so every replica and every proxy reading through Warden sees the same approvals."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from warden.core.pins import ToolPin
from warden.errors import NotFoundError
from warden.storage.sql.codec import dump
from warden.storage.sql.engine import SQLBase
from warden.storage.sql.rows import fetch_one
from warden.storage.sql.tables import agent_manifests, mcp_tool_pins


def _pin(m: RowMapping) -> ToolPin:
    observed = m["observed_definition"]
    return ToolPin(
        server=m["server"],
        tool=m["tool"],
        digest=m["digest"],
        definition=json.loads(m["definition"]),
        approved_by=m["approved_by"],
        approved_at=m["approved_at"],
        observed_digest=m["observed_digest"],
        observed_definition=json.loads(observed) if observed else None,
        observed_at=m["observed_at"],
    )


def _pin_row(pin: ToolPin) -> dict[str, Any]:
    return {
        "server": pin.server,
        "tool": pin.tool,
        "digest": pin.digest,
        "definition": dump(pin.definition),
        "approved_by": pin.approved_by,
        "approved_at": float(pin.approved_at),
        "observed_digest": pin.observed_digest,
        "observed_definition": (
            dump(pin.observed_definition) if pin.observed_definition is not None else None
        ),
        "observed_at": pin.observed_at,
    }


class IntegritySQL(SQLBase):
    """See the module docstring. Relies on ``SQLStore._tx`` and ``SQLStore._insert``."""

    # -- manifest declarations ----------------------------------------------------------------

    def put_manifest_declaration(
        self, agent_name: str, declaration: dict[str, Any], *, at: float, by: str
    ) -> None:
        values = {
            "agent_name": agent_name,
            "declaration": dump(declaration),
            "updated_at": float(at),
            "updated_by": by,
        }
        with self._tx(write=True) as conn:
            insert = self._insert(conn, agent_manifests).values(**values)
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=["agent_name"],
                    set_={
                        k: insert.excluded[k] for k in ("declaration", "updated_at", "updated_by")
                    },
                )
            )

    def fetch_manifest_declaration(self, agent_name: str) -> dict[str, Any]:
        row = fetch_one(
            self._tx,
            sa.select(agent_manifests).where(agent_manifests.c.agent_name == agent_name),
            f"agent `{agent_name}` declares no manifest",
        )
        declaration: dict[str, Any] = json.loads(row["declaration"])
        return declaration

    def delete_manifest_declaration(self, agent_name: str) -> None:
        with self._tx(write=True) as conn:
            conn.execute(
                sa.delete(agent_manifests).where(agent_manifests.c.agent_name == agent_name)
            )

    # -- tool pins ----------------------------------------------------------------------------

    def list_tool_pins(self, *, server: str | None = None) -> list[ToolPin]:
        query = sa.select(mcp_tool_pins).order_by(mcp_tool_pins.c.server, mcp_tool_pins.c.tool)
        if server is not None:
            query = query.where(mcp_tool_pins.c.server == server)
        with self._tx(write=False) as conn:
            return [_pin(m) for m in conn.execute(query).mappings()]

    def fetch_tool_pin(self, server: str, tool: str) -> ToolPin:
        return _pin(
            fetch_one(
                self._tx,
                sa.select(mcp_tool_pins).where(
                    mcp_tool_pins.c.server == server, mcp_tool_pins.c.tool == tool
                ),
                f"tool `{tool}` of `{server}` is not pinned",
            )
        )

    def put_tool_pin(self, pin: ToolPin) -> None:
        """Approve a definition (replaces the pin, clears what was observed)."""
        values = _pin_row(pin)
        with self._tx(write=True) as conn:
            insert = self._insert(conn, mcp_tool_pins).values(**values)
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=["server", "tool"],
                    set_={k: insert.excluded[k] for k in values if k not in ("server", "tool")},
                )
            )

    def create_tool_pin(self, pin: ToolPin) -> bool:
        """Pin a tool seen for the first time (trust on first use); False when a pin exists
        (of two replicas racing, exactly one pins)."""
        with self._tx(write=True) as conn:
            insert = self._insert(conn, mcp_tool_pins).values(**_pin_row(pin))
            row = conn.execute(
                insert.on_conflict_do_nothing(index_elements=["server", "tool"]).returning(
                    mcp_tool_pins.c.tool
                )
            ).first()
        return row is not None

    def note_tool_change(
        self, server: str, tool: str, digest: str, definition: dict[str, Any], *, at: float
    ) -> bool:
        """Record a definition that differs from the pin; True the first time this digest is
        seen (so the change is audited once, not on every listing)."""
        with self._tx(write=True) as conn:
            result = conn.execute(
                sa.update(mcp_tool_pins)
                .where(
                    mcp_tool_pins.c.server == server,
                    mcp_tool_pins.c.tool == tool,
                    sa.or_(
                        mcp_tool_pins.c.observed_digest.is_(None),
                        mcp_tool_pins.c.observed_digest != digest,
                    ),
                )
                .values(
                    observed_digest=digest,
                    observed_definition=dump(definition),
                    observed_at=float(at),
                )
                .returning(mcp_tool_pins.c.tool)
            ).first()
        return result is not None

    def delete_tool_pin(self, server: str, tool: str) -> None:
        with self._tx(write=True) as conn:
            gone = conn.execute(
                sa.delete(mcp_tool_pins)
                .where(mcp_tool_pins.c.server == server, mcp_tool_pins.c.tool == tool)
                .returning(mcp_tool_pins.c.tool)
            ).first()
        if gone is None:
            raise NotFoundError(f"tool `{tool}` of `{server}` is not pinned")
