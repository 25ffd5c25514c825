"""Step-up approval: what a decision needs approved, and the digest an approval is bound to.

Pure: no I/O. ``warden.service.approvals`` runs the workflow (requests, escalation, grants).
"""

from warden.approvals.digest import action_digest
from warden.approvals.requirement import (
    APPROVERS_LEVEL,
    OWNER_LEVEL,
    ApprovalSettings,
    Requirement,
    parse_level,
    requirement_from,
)

__all__ = [
    "APPROVERS_LEVEL",
    "OWNER_LEVEL",
    "ApprovalSettings",
    "Requirement",
    "action_digest",
    "parse_level",
    "requirement_from",
]
