"""Thresholds (placeholder, filled in by the evaluator module)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Thresholds:
    checkpoint_interval: float = 300.0
