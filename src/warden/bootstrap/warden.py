"""``Warden``: one process — its settings, its frozen ``Services`` and the ``Runtime`` (ADR 0151).

    w = Warden(settings)          # builds every component (build_services); starts nothing
    w.start()                     # the background loops (Runtime)
    ...
    w.close()                     # stops them in reverse, writes the last records, closes

A ``Warden`` *is* its ``Services``: the components are frozen dataclass fields (assigning one
raises ``FrozenInstanceError``). ``settings`` and ``primary`` are the process's own attributes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

from warden.bootstrap.build import build_services
from warden.bootstrap.runtime import Runtime, govern, governance_tick, housekeeping
from warden.bootstrap.services import Services
from warden.config import Settings
from warden.core.clock import Clock
from warden.core.ports import Store
from warden.service.reports import controls_report
from warden.tokens.sealed import historical_jwks

__all__ = ["Warden"]


class Warden(Services):
    settings: Settings
    # ``warden serve --workers N``: only the primary worker of a host runs the chores that are
    # once per deployment (housekeeping, governance, checkpoints, export, signals; ADR 0142)
    primary: bool

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        store: Store | None = None,
        primary: bool = True,
    ) -> None:
        built = build_services(settings, clock=clock, store=store)
        super().__init__(**{f.name: getattr(built, f.name) for f in fields(Services)})
        self.settings = settings
        self.primary = primary
        self._runtime: Runtime | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the background loops (construction never does)."""
        self._runtime = Runtime(self, self.settings, primary=self.primary)
        self._runtime.start()

    def close(self) -> None:
        self.feed.close()  # live event streams end (embedded servers have no uvicorn hook)
        runtime = self._runtime or Runtime(self, self.settings, primary=self.primary)
        runtime.stop()
        if self.counters is not None:
            self.counters.close()
        self.tracing.shutdown()
        self.store.close()

    # -- one pass of a chore (the loops run these; tests and the CLI call them directly) ---------
    def housekeeping(self) -> None:
        housekeeping(self)

    def governance_tick(self) -> None:
        governance_tick(self)

    def govern(self) -> None:
        govern(self)

    # -- policies -------------------------------------------------------------------------------
    def reload_policies(self, *, announce: bool = True) -> str:
        watcher = self._runtime.watcher if self._runtime is not None else None
        return self.policies.reload(self.settings.policies_dir, announce=announce, watcher=watcher)

    @property
    def policy_error(self) -> str | None:
        return self.policy_status.error

    @property
    def policy_errors(self) -> list[dict[str, Any]]:
        return self.policy_status.errors

    # -- evidence -------------------------------------------------------------------------------
    def evidence_jwks(self) -> dict[str, Any]:
        """Every public key that ever signed (retired ones too): what verifies checkpoints."""
        return historical_jwks(self.store.list_signing_keys())

    def controls_report(
        self, start: float, end: float, progress: Callable[[int], object] | None = None
    ) -> dict[str, Any]:
        self.writer.flush()
        return controls_report(
            self.store,
            self.evidence_jwks(),
            start=start,
            end=end,
            now=self.clock.now(),
            thresholds=self.thresholds,
            progress=progress,
            checkpoint_sinks=len(self.checkpoints.sinks),
        )

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir
