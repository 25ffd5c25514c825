"""What happens when a policy set is loaded, activated or rejected on this replica (ADR 0120).

``PolicyStatus`` is the reaction to a change, wherever it came from (this replica's folder, the
published revision ``PolicySync`` follows): an activated set reaches the decision path and is
audited (``policy.loaded``); a rejected one leaves the last good set serving, is audited
(``policy.rejected``) and shows in ``/v1/policies`` and ``/readyz``. ``PolicyPublisher`` handles a
set loaded from this replica's own folder: publish it, activate it, announce ``policy.reload``.

They are two objects because ``PolicySync`` reports to the first and is used by the second:
built in that order, nothing is wired after construction (ADR 0151).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from warden.authz.pdp import PolicyDecisionPoint
from warden.authz.policy_set import LoadedPolicySet, load_policy_dir
from warden.authz.watcher import PolicyWatcher
from warden.errors import PolicyError
from warden.service.auditing import Auditor
from warden.service.decisions import DecisionService
from warden.service.policy_sync import PolicySync

log = logging.getLogger("warden")

__all__ = ["PolicyPublisher", "PolicyStatus"]


class PolicyStatus:
    def __init__(
        self, pdp: PolicyDecisionPoint, decisions: DecisionService, auditor: Auditor
    ) -> None:
        self._pdp = pdp
        self._decisions = decisions
        self._audit = auditor
        self.error: str | None = None
        self.errors: list[dict[str, Any]] = []

    def activated(self, lps: LoadedPolicySet) -> None:
        self.error = None
        self.errors = []
        self._decisions.policies_loaded(lps)
        self._audit.record(
            "policy.loaded",
            "warden",
            {"revision": lps.revision, "policies": len(lps.policy_ids)},
        )

    def rejected(self, exc: Exception) -> None:
        self.error = str(exc)
        detail = getattr(exc, "detail", None) or {}
        self.errors = list(detail.get("errors") or [])[:50]
        log.warning("policy change rejected, last good set keeps serving: %s", exc)
        self._audit.record(
            "policy.rejected",
            "warden",
            {
                "error": str(exc)[:2000],
                # each with file, line, column, snippet, message (authz/source.py)
                "errors": self.errors,
                "serving_revision": self._pdp.revision,
            },
        )


class PolicyPublisher:
    def __init__(
        self,
        sync: PolicySync,
        status: PolicyStatus,
        pdp: PolicyDecisionPoint,
        *,
        announce: Callable[[str, dict[str, Any]], None],
        replica_id: str,
    ) -> None:
        self._sync = sync
        self._status = status
        self._pdp = pdp
        self._announce = announce
        self._replica_id = replica_id

    def loaded(self, lps: LoadedPolicySet) -> None:
        """A set loaded from this replica's folder: activate here and everywhere (ADR 0120)."""
        # activated and published in one step under the poll's lock, before the activation is
        # recorded (which waits for an audit commit, ADR 0090)
        published = self._sync.adopt(lps, by=self._replica_id)
        self._status.activated(lps)
        if published:
            self._announce("policy.reload", {"revision": lps.revision})

    def reload(
        self,
        policies_dir: Path | None,
        *,
        announce: bool = True,
        watcher: PolicyWatcher | None = None,
    ) -> str:
        """Load the folder again; ``announce=False`` activates here only. With the folder
        ``watcher`` running, the load is serialised with its poll."""
        if policies_dir is None:
            raise PolicyError("no policy folder is configured")
        try:
            if announce and watcher is not None:
                return watcher.load_now().revision  # activates through ``loaded``
            lps = load_policy_dir(policies_dir)
        except PolicyError as exc:
            self._status.rejected(exc)
            raise
        if announce:
            self.loaded(lps)
        else:
            self._pdp.activate(lps)
            self._status.activated(lps)
        return lps.revision
