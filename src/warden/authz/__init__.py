"""Runtime authorization: Cedar policies, the PDP and the AuthZEN mapping.

``authz._cedar`` is the only module in Warden that imports ``cedarpy``.
"""

from __future__ import annotations

from .cases import CaseResult, run_cases
from .pdp import PolicyDecisionPoint
from .policy_set import LoadedPolicySet, PolicyInfo, load_policy_dir
from .types import AuthzRequest, Decision, EntityRef
from .watcher import PolicyWatcher

__all__ = [
    "AuthzRequest",
    "CaseResult",
    "Decision",
    "EntityRef",
    "LoadedPolicySet",
    "PolicyDecisionPoint",
    "PolicyInfo",
    "PolicyWatcher",
    "load_policy_dir",
    "run_cases",
]
