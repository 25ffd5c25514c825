"""Scopes: the tools/actions a task may use. Granted = requested ∩ entitlements (∩ policy)."""

from __future__ import annotations

from collections.abc import Iterable

from warden.core.ids import validate_scope_token


def parse_scope(raw: str | Iterable[str] | None) -> tuple[str, ...]:
    """Parse a space-separated scope string (RFC 6749 §3.3) into sorted unique entries."""
    if raw is None:
        return ()
    items = raw.split() if isinstance(raw, str) else list(raw)
    return tuple(sorted({validate_scope_token(item) for item in items}))


def format_scope(scope: Iterable[str]) -> str:
    return " ".join(sorted(scope))


def grant(requested: Iterable[str], entitlements: Iterable[str]) -> tuple[str, ...]:
    """The most a task may get: what it asked for and the agent may ever hold."""
    return tuple(sorted(set(requested) & set(entitlements)))


def effective_scope(scope: Iterable[str], entitlements: Iterable[str]) -> frozenset[str]:
    """What a credential may use right now: its scope, bounded by the agent's current
    entitlements (taking an entitlement away takes it from every live task at once)."""
    return frozenset(scope).intersection(entitlements)
