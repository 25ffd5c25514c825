"""One policy revision on every replica (ADR 0120).

The database holds every published policy bundle and a pointer to the active revision. A
replica that loads a valid set from its own folder (at start, on a folder change, on
``POST /v1/policies/reload``) publishes it — bundle and pointer in one transaction — and
announces ``policy.reload``. Every replica serves the pointer's revision: on the
announcement, and on a poll every ``interval`` seconds (a lost notification costs at most
one interval), it compares the pointer with what it serves and, if they differ, loads the
bundle from the database, validates it like a folder, and activates it.

Freshness. ``confirmed_at`` is the last time this replica read the pointer and was serving
that revision. Past ``max_staleness`` without a confirmation (database unreachable, or a
published bundle this replica cannot load) the replica is stale: ``/readyz`` answers 503
naming the revision it serves, the one it should serve (when known) and why. ``status()`` is
the small freshness tracker a replication-wide one can take in as one more input.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from warden.authz.pdp import PolicyDecisionPoint
from warden.authz.policy_set import LoadedPolicySet, load_policy_files
from warden.core.clock import Clock
from warden.core.ports import Store
from warden.errors import NotFoundError, PolicyError, WardenError

__all__ = ["PolicyFreshness", "PolicySync"]

log = logging.getLogger("warden.policies")


@dataclass(frozen=True, slots=True)
class PolicyFreshness:
    serving: str | None
    current: str | None  # the pointer's revision, as last read
    confirmed_at: float | None
    age: float | None
    stale: bool
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "serving": self.serving,
            "current": self.current,
            "confirmed_at": self.confirmed_at,
            "age": None if self.age is None else round(self.age, 3),
            "stale": self.stale,
            "error": self.error,
        }


class PolicySync:
    def __init__(
        self,
        store: Store,
        pdp: PolicyDecisionPoint,
        clock: Clock,
        *,
        max_staleness: float,
        on_activated: Callable[[LoadedPolicySet], None],
        on_rejected: Callable[[Exception], None],
    ) -> None:
        self._store = store
        self._pdp = pdp
        self._clock = clock
        self.max_staleness = max_staleness
        self._on_activated = on_activated
        self._on_rejected = on_rejected
        self._lock = threading.Lock()
        self._current: str | None = None
        # the bound runs from start: a replica has max_staleness to confirm its first revision
        self._confirmed_at: float | None = clock.now()
        self._error: str | None = None
        self._failed_revision: str | None = None  # a bundle we could not load: not retried

    # -- publishing -----------------------------------------------------------------------
    def adopt(self, lps: LoadedPolicySet, *, by: str) -> bool:
        """Activate a set loaded from this replica's folder and publish it, as one step.

        Both happen under the poll's lock: a poll running between the two would see the new set
        served here and the old one published, and put the old one back (undoing the change for
        up to an interval, and re-activating over a rejection reported meanwhile). Returns
        whether it was published; when the database refuses, the set still serves here.
        """
        with self._lock:
            self._pdp.activate(lps)
            try:
                pointer = self._store.publish_policies(
                    lps.revision, dict(lps.sources), at=self._clock.now(), by=by
                )
            except WardenError as exc:
                log.warning("could not publish policy revision %s: %s", lps.revision, exc.message)
                return False
            self._confirm(pointer.revision)
            return True

    # -- following ------------------------------------------------------------------------
    def sync(self) -> LoadedPolicySet | None:
        """Serve the pointer's revision; returns the set it activated, if any. Never raises."""
        with self._lock:
            try:
                pointer = self._store.active_policies()
            except WardenError as exc:
                self._error = f"cannot read the active policy revision: {exc.message}"
                return None
            except Exception as exc:  # a driver error must not end the poll loop
                self._error = f"cannot read the active policy revision: {exc}"
                return None
            if pointer is None:
                # nothing published yet: what this replica loaded itself is the current set
                self._confirm(self._pdp.revision)
                return None
            self._current = pointer.revision
            if pointer.revision == self._pdp.revision:
                self._confirm(pointer.revision)
                return None
            if pointer.revision == self._failed_revision:
                return None  # already reported; stays stale until a loadable one is published
            try:
                files = self._store.policy_bundle(pointer.revision)
                lps = load_policy_files(
                    {n: t.encode("utf-8") for n, t in files.items()},
                    origin=f"<revision {pointer.revision[:12]}>",
                )
            except (PolicyError, NotFoundError) as exc:
                self._failed_revision = pointer.revision
                self._error = f"cannot load revision {pointer.revision[:12]}: {exc.message}"
                log.error("policy revision %s cannot be loaded: %s", pointer.revision, exc)
                self._report(exc)
                return None
            except WardenError as exc:
                self._error = f"cannot read revision {pointer.revision[:12]}: {exc.message}"
                return None
            self._pdp.activate(lps)
            self._confirm(lps.revision)
        try:
            self._on_activated(lps)
        except Exception:
            log.exception("policy activation callback failed")
        return lps

    def _confirm(self, revision: str | None) -> None:
        self._current = revision
        self._confirmed_at = self._clock.now()
        self._error = None
        self._failed_revision = None

    def _report(self, exc: Exception) -> None:
        try:
            self._on_rejected(exc)
        except Exception:
            log.exception("policy rejection callback failed")

    # -- freshness ------------------------------------------------------------------------
    def status(self) -> PolicyFreshness:
        now = self._clock.now()
        confirmed = self._confirmed_at
        age = None if confirmed is None else max(0.0, now - confirmed)
        stale = age is None or age > self.max_staleness
        return PolicyFreshness(
            self._pdp.revision, self._current, confirmed, age, stale, self._error
        )
