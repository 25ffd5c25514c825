"""Declared baselines (from an agent's registration) and their validation.

JSON shape, every key optional::

    {"tools": ["tickets.read"], "destinations": ["api.example.com"],
     "calls_per_minute": 10, "active_hours": [8, 18], "max_fan_out": 3,
     "budgets": {"calls": 500, "cost": 20.0,
                 "tools": {"payments.refund": {"calls": 3, "cost": 500}}}}

``active_hours`` is a UTC ``[start, end)`` pair of hours (``[22, 6]`` wraps past midnight) or
an explicit list of hours. Budgets count allowed calls (and PEP-reported ``context.cost``) per
``behaviour.budget_window``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from warden.errors import InvalidParameterError

MAX_ITEMS = 1000
KEYS = {"tools", "destinations", "calls_per_minute", "active_hours", "max_fan_out", "budgets"}


@dataclass(frozen=True)
class Budget:
    calls: int | None = None
    cost: float | None = None


@dataclass(frozen=True)
class Declared:
    tools: frozenset[str] | None = None
    destinations: frozenset[str] | None = None
    calls_per_minute: float | None = None
    active_hours: frozenset[int] | None = None
    max_fan_out: int | None = None
    budget: Budget = field(default_factory=Budget)
    tool_budgets: Mapping[str, Budget] = field(default_factory=dict)
    has_budget: bool = False  # any budget at all (precomputed: checked on every call)


def _bad(message: str, where: str) -> InvalidParameterError:
    return InvalidParameterError(message, detail={"field": f"baseline.{where}"})


def _names(value: Any, where: str) -> frozenset[str]:
    if not isinstance(value, list) or len(value) > MAX_ITEMS:
        raise _bad(f"`baseline.{where}` must be a list of at most {MAX_ITEMS} strings", where)
    if not all(isinstance(v, str) and 0 < len(v) <= 300 for v in value):
        raise _bad(f"`baseline.{where}` must hold non-empty strings", where)
    return frozenset(value)


def _number(value: Any, where: str, *, integer: bool = False) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value < 0 or (integer and value != int(value)):
        kind = "a non-negative integer" if integer else "a non-negative number"
        raise _bad(f"`baseline.{where}` must be {kind}", where)
    return float(value)


def _hours(value: Any) -> frozenset[int]:
    if not isinstance(value, list) or not all(
        isinstance(h, int) and not isinstance(h, bool) and 0 <= h <= 24 for h in value
    ):
        raise _bad("`baseline.active_hours` must be [start, end) UTC hours or a list", "hours")
    if len(value) == 2:
        start, end = value[0] % 24, value[1] % 24
        if start == end:
            return frozenset(range(24))
        span = range(start, end) if start < end else [*range(start, 24), *range(0, end)]
        return frozenset(span)
    return frozenset(h % 24 for h in value)


def _budget(value: Any, where: str) -> Budget:
    if not isinstance(value, dict) or set(value) - {"calls", "cost"}:
        raise _bad(f"`baseline.{where}` must be {{calls, cost}}", where)
    calls = value.get("calls")
    cost = value.get("cost")
    return Budget(
        int(_number(calls, f"{where}.calls", integer=True)) if calls is not None else None,
        _number(cost, f"{where}.cost") if cost is not None else None,
    )


def parse_declared(body: Any) -> Declared:
    """Validate a declared baseline; InvalidParameterError names the bad field."""
    if body is None:
        return Declared()
    if not isinstance(body, dict):
        raise InvalidParameterError("`baseline` must be an object", detail={"field": "baseline"})
    unknown = set(body) - KEYS
    if unknown:
        raise _bad(f"unknown baseline key `{sorted(unknown)[0]}`", sorted(unknown)[0])
    budgets = body.get("budgets")
    budget = Budget()
    tool_budgets: dict[str, Budget] = {}
    if budgets is not None:
        if not isinstance(budgets, dict) or set(budgets) - {"calls", "cost", "tools"}:
            raise _bad("`baseline.budgets` must be {calls, cost, tools}", "budgets")
        budget = _budget({k: v for k, v in budgets.items() if k != "tools"}, "budgets")
        tools = budgets.get("tools") or {}
        if not isinstance(tools, dict) or len(tools) > MAX_ITEMS:
            raise _bad("`baseline.budgets.tools` must map tool names to budgets", "budgets.tools")
        for name, spec in tools.items():
            tool_budgets[str(name)] = _budget(spec, f"budgets.tools.{name}")
    fan_out = body.get("max_fan_out")
    rate = body.get("calls_per_minute")
    return Declared(
        tools=_names(body["tools"], "tools") if body.get("tools") is not None else None,
        destinations=_names(body["destinations"], "destinations")
        if body.get("destinations") is not None
        else None,
        calls_per_minute=_number(rate, "calls_per_minute") if rate is not None else None,
        active_hours=_hours(body["active_hours"]) if body.get("active_hours") is not None else None,
        max_fan_out=int(_number(fan_out, "max_fan_out", integer=True))
        if fan_out is not None
        else None,
        budget=budget,
        tool_budgets=tool_budgets,
        has_budget=budget != Budget() or bool(tool_budgets),
    )
