"""Audit record → OCSF 1.8.0 event, table-driven.

``RULES`` maps a record type (exact, or a prefix ending in ``.``) to a builder; the most specific
rule wins, and a type nothing matches becomes API Activity (6003) "Other" with the record type as
``api.operation``, so a new record type is exported (and validates) before anyone maps it.
Other features add their types with ``register("approval.", builder)``.

Every event carries the raw record under ``unmapped.warden`` (seq, hashes, data), so a SIEM can
re-verify the hash chain from the export alone, and ``metadata.sequence`` = the record's seq
(gaps and duplicates are visible downstream).

Class choice follows ``reference/frameworks.md`` §6.2: issuance and task sessions →
Authentication 3002; agent and policy lifecycle, credential revocation → Entity Management 3004;
owners and operators → Account Change 3001; certification outcomes → User Access Management 3005;
decisions and approvals → API Activity 6003 with the ``security_control`` profile; behavioural
findings → Detection Finding 2004.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import warden
from warden.core.model import AuditRecord
from warden.ocsf.models import (
    API,
    AccountChange,
    Actor,
    APIActivity,
    Authentication,
    Authorization,
    BaseEvent,
    DetectionFinding,
    EntityManagement,
    FindingInfo,
    ManagedEntity,
    Metadata,
    NetworkEndpoint,
    Policy,
    Product,
    ResourceDetails,
    Service,
    Session,
    User,
    UserAccessManagement,
)

Builder = Callable[[AuditRecord], BaseEvent]

PRODUCT = Product(name="Warden", vendor_name="Warden project", version=warden.__version__)
SECURITY_CONTROL = ["security_control"]

# OCSF security_control dispositions
ALLOWED, BLOCKED, APPROVED, DELAYED, LOGGED, ACCESS_REVOKED, REJECTED = 1, 2, 8, 14, 17, 24, 25
SERVICE_USER, SYSTEM_USER, ADMIN_USER, HUMAN_USER, OTHER_USER = 4, 3, 2, 1, 99
OAUTH2 = 6
# managed_entity.type_id has no "Other" in 1.8.0: agents, credentials and campaigns set only `type`
POLICY_ENTITY = 5
SEVERITIES = {"info": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}


def ms(ts: float | None) -> int | None:
    return None if ts is None else round(float(ts) * 1000)


def _s(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def metadata(rec: AuditRecord, profiles: list[str] | None = None) -> Metadata:
    return Metadata(
        product=PRODUCT,
        uid=rec.hash,
        sequence=rec.seq,
        correlation_uid=rec.task_id or rec.decision_id,
        log_name="warden.audit",
        logged_time=ms(rec.ts),
        profiles=profiles,
    )


def raw(rec: AuditRecord) -> dict[str, Any]:
    return {
        "warden": {
            "seq": rec.seq,
            "type": rec.type,
            "ts": rec.ts,
            "actor": rec.actor,
            "agent": rec.agent,
            "task_id": rec.task_id,
            "decision_id": rec.decision_id,
            "prev_hash": rec.prev_hash,
            "hash": rec.hash,
            "data": rec.data,
        }
    }


def principal(actor: str) -> User:
    """Who acted, typed: operators (Admin), Warden itself (System), agents (Service)."""
    if actor.startswith("operator:"):
        return User(name=actor.removeprefix("operator:"), type_id=ADMIN_USER, type="Admin")
    if actor == "warden":
        return User(name="warden", type_id=SYSTEM_USER, type="System")
    if actor.startswith("spiffe://"):
        return User(uid=actor, type_id=SERVICE_USER, type="Service")
    if actor.startswith("human:") or "@" in actor:
        return User(uid=actor.removeprefix("human:"), type_id=HUMAN_USER, type="User")
    return User(name=actor or "unknown", type_id=OTHER_USER, type="Other")


def agent_user(rec: AuditRecord) -> User:
    spiffe = rec.data.get("spiffe_id") or (rec.actor if rec.actor.startswith("spiffe://") else None)
    return User(
        uid=_s(spiffe) or rec.agent or "unknown",
        name=rec.agent,
        type_id=SERVICE_USER,
        type="Service",
    )


def _common(rec: AuditRecord, profiles: list[str] | None = None) -> dict[str, Any]:
    return {
        "time": ms(rec.ts),
        "metadata": metadata(rec, profiles),
        "unmapped": raw(rec),
        "message": f"{rec.type} by {rec.actor}",
    }


# -- builders ------------------------------------------------------------------------------------


def task_session(rec: AuditRecord) -> BaseEvent:
    """task.started (Logon), task.refused (Logon, failure), task.<end> (Logoff)."""
    d = rec.data
    ended = rec.type not in ("task.started", "task.refused")
    refused = rec.type == "task.refused"
    return Authentication(
        **_common(rec),
        activity_id=2 if ended else 1,
        user=agent_user(rec),
        session=Session(
            uid=rec.task_id,
            created_time=ms(rec.ts) if rec.type == "task.started" else None,
            expiration_time=ms(d.get("expires_at")),
            expiration_reason=_s(d.get("reason")) if ended else None,
        )
        if rec.task_id
        else None,
        auth_protocol_id=OAUTH2,
        auth_protocol="OAUTH 2.0",
        status_id=2 if refused else 1,
        status_detail=_s(d.get("reason")) if refused else None,
        severity_id=2 if refused else 1,
    )


def credential_issue(rec: AuditRecord) -> BaseEvent:
    """credential.issued (Authentication Ticket) / .renewed and .renew_refused (Renew)."""
    d = rec.data
    refused = rec.type.endswith("refused")
    audience = d.get("audience") or []
    return Authentication(
        **_common(rec),
        activity_id=3 if rec.type.endswith("issued") else 5,
        user=agent_user(rec),
        session=Session(
            uid=rec.task_id,
            created_time=ms(d.get("issued_at")),
            expiration_time=ms(d.get("expires_at")),
            credential_uid=_s(d.get("jti")),
        ),
        service=Service(name=str(audience[0])) if audience else None,
        auth_protocol_id=OAUTH2,
        auth_protocol="OAUTH 2.0",
        status_id=2 if refused else 1,
        status_detail=_s(d.get("reason")) if refused else None,
    )


def credential_revoke(rec: AuditRecord) -> BaseEvent:
    d = rec.data
    return EntityManagement(
        **_common(rec, SECURITY_CONTROL),
        activity_id=11,
        entity=ManagedEntity(
            uid=_s(d.get("jti") or d.get("lease_id") or d.get("id")) or rec.hash,
            type="Lease" if rec.type.startswith("lease.") else "Credential",
        ),
        actor=Actor(user=principal(rec.actor)),
        disposition_id=ACCESS_REVOKED,
        comment=_s(d.get("reason")),
        status_id=1,
    )


AGENT_ACTIVITIES = {
    "agent.registered": 1,
    "agent.suspended": 12,
    "agent.reactivated": 13,
    "agent.decommissioned": 11,
}


def agent_lifecycle(rec: AuditRecord) -> BaseEvent:
    d = rec.data
    return EntityManagement(
        **_common(rec),
        activity_id=AGENT_ACTIVITIES.get(rec.type, 3),
        activity_name=None if rec.type in AGENT_ACTIVITIES else "Update",
        entity=ManagedEntity(
            uid=_s(d.get("spiffe_id")) or rec.agent or "unknown",
            name=rec.agent,
            type="Agent",
            data=d or None,
        ),
        actor=Actor(user=principal(rec.actor)),
        comment=_s(d.get("reason")) or rec.type,
        severity_id=3 if rec.type in ("agent.suspended", "agent.orphaned") else 1,
        status_id=1,
    )


OWNER_ACTIVITIES = {
    "owner.created": 1,
    "owner.deactivated": 5,
    "owner.reactivated": 2,
    "operator.created": 1,
}


def account(rec: AuditRecord) -> BaseEvent:
    d = rec.data
    if rec.type.startswith("operator."):
        user = User(name=_s(d.get("name")), uid=_s(d.get("operator")), type_id=2, type="Admin")
    else:
        user = User(uid=_s(d.get("owner")) or "unknown", type_id=HUMAN_USER, type="User")
    return AccountChange(
        **_common(rec),
        activity_id=OWNER_ACTIVITIES.get(rec.type, 99),
        user=user,
        actor=Actor(user=principal(rec.actor)),
        status_id=1,
    )


def _policies(ids: Any, revision: Any) -> list[Policy]:
    return [Policy(uid=str(p), version=_s(revision)) for p in (ids or [])]


def decision(rec: AuditRecord) -> BaseEvent:
    d = rec.data
    allowed = d.get("decision") == "allow"
    monitored = bool(d.get("monitor"))
    revision = d.get("policy_revision")
    reasons = d.get("reasons") or []
    resource = d.get("resource") or {}
    policies = _policies(reasons, revision)
    return APIActivity(
        **_common(rec, SECURITY_CONTROL),
        activity_id=99,
        activity_name="Authorize",
        actor=Actor(
            user=principal(rec.actor) if not rec.agent else agent_user(rec),
            session=Session(uid=rec.task_id, credential_uid=_s(d.get("jti")))
            if rec.task_id
            else None,
            authorizations=[
                Authorization(decision="allow" if allowed else "deny", policy=p) for p in policies
            ]
            or [Authorization(decision="allow" if allowed else "deny")],
        ),
        api=API(operation=str(d.get("action") or "unknown"), service=Service(name="warden-pdp")),
        src_endpoint=NetworkEndpoint(name="pep", uid=_s(d.get("request_id"))),
        resources=[
            ResourceDetails(uid=_s(resource.get("id")) or "unknown", type=_s(resource.get("type")))
        ]
        if resource
        else None,
        action_id=1 if allowed else 2,
        disposition_id=(LOGGED if monitored else ALLOWED) if allowed else BLOCKED,
        policy=policies[0]
        if policies
        else (Policy(uid=str(d["reason"])) if d.get("reason") else None),
        status_id=1,
        status_detail=_s(d.get("reason")),
        severity_id=1 if allowed and not monitored else 2,
    )


APPROVAL_DISPOSITIONS = {
    "requested": DELAYED,
    "granted": APPROVED,
    "approved": APPROVED,
    "denied": REJECTED,
    "rejected": REJECTED,
    "expired": REJECTED,
    "escalated": DELAYED,
    "used": ALLOWED,
}


def approval(rec: AuditRecord) -> BaseEvent:
    d = rec.data
    verb = rec.type.rsplit(".", 1)[-1]
    approver = d.get("approver") or d.get("decided_by")
    return APIActivity(
        **_common(rec, SECURITY_CONTROL),
        activity_id=99,
        activity_name="Approval",
        actor=Actor(
            user=principal(str(approver)) if approver else principal(rec.actor),
            session=Session(uid=rec.task_id) if rec.task_id else None,
        ),
        api=API(
            operation=str(d.get("action") or rec.type), service=Service(name="warden-approvals")
        ),
        src_endpoint=NetworkEndpoint(name="warden"),
        disposition_id=APPROVAL_DISPOSITIONS.get(verb, 99),
        action_id=1 if verb in ("granted", "approved", "used") else 2,
        status_id=1,
    )


def finding(rec: AuditRecord) -> BaseEvent:
    d = rec.data
    severity = SEVERITIES.get(str(d.get("severity", "")).lower(), 3)
    closed = rec.type.endswith((".resolved", ".closed", ".dismissed"))
    uid = _s(d.get("finding_id") or d.get("id")) or rec.hash
    return DetectionFinding(
        **_common(rec),
        activity_id=3 if closed else 1,
        finding_info=FindingInfo(
            uid=uid,
            title=_s(d.get("title") or d.get("kind") or rec.type),
            desc=_s(d.get("detail") or d.get("description")),
            types=[str(d["kind"])] if d.get("kind") else None,
            created_time=ms(rec.ts),
        ),
        is_alert=severity >= 4,
        resources=[ResourceDetails(uid=rec.agent, type="Agent")] if rec.agent else None,
        severity_id=severity,
        status_id=1,
    )


def policy_change(rec: AuditRecord) -> BaseEvent:
    d = rec.data
    revision = _s(d.get("revision") or d.get("serving_revision"))
    failed = rec.type == "policy.rejected"
    return EntityManagement(
        **_common(rec),
        activity_id=3,
        entity=ManagedEntity(
            name="policy set" if rec.type != "policy.mode_changed" else "enforcement mode",
            uid=revision,
            type="Policy",
            type_id=POLICY_ENTITY,
            policy=Policy(uid=revision, version=revision) if revision else None,
            data=d or None,
        ),
        actor=Actor(user=principal(rec.actor)),
        status_id=2 if failed else 1,
        status_detail=str(d.get("error"))[:500] if failed and d.get("error") else None,
    )


def certification(rec: AuditRecord) -> BaseEvent:
    """Review outcomes are entitlement changes (3005); campaign events are entities (3004)."""
    d = rec.data
    if rec.agent is None:
        return EntityManagement(
            **_common(rec),
            activity_id=1 if rec.type.endswith("started") else 3,
            entity=ManagedEntity(
                uid=_s(d.get("campaign")) or rec.hash, type="Certification campaign"
            ),
            actor=Actor(user=principal(rec.actor)),
            status_id=1,
        )
    removed = [str(e) for e in d.get("removed") or []]
    revoking = bool(removed) or rec.type.endswith(("revoked", "suspended"))
    return UserAccessManagement(
        **_common(rec),
        activity_id=2 if revoking else 99,
        activity_name=None if revoking else "Certify",
        user=agent_user(rec),
        privileges=removed if revoking else [str(e) for e in d.get("entitlements") or []],
        actor=Actor(user=principal(rec.actor)),
        status_id=1,
    )


def other(rec: AuditRecord) -> BaseEvent:
    return APIActivity(
        **_common(rec),
        activity_id=99,
        activity_name=rec.type,
        actor=Actor(user=principal(rec.actor)),
        api=API(operation=rec.type, service=Service(name="warden")),
        src_endpoint=NetworkEndpoint(name="warden"),
        status_id=1,
    )


RULES: dict[str, Builder] = {
    "task.started": task_session,
    "task.refused": task_session,
    "task.": task_session,  # completed, failed, expired, revoked
    "credential.issued": credential_issue,
    "credential.renewed": credential_issue,
    "credential.renew_refused": credential_issue,
    "credential.revoked": credential_revoke,
    "lease.issued": credential_issue,
    "lease.revoked": credential_revoke,
    "agent.": agent_lifecycle,
    "owner.": account,
    "operator.": account,
    "authz.decision": decision,
    "approval.": approval,
    "finding.": finding,
    "behaviour.": finding,
    "policy.": policy_change,
    "certification.": certification,
}


def register(pattern: str, builder: Builder) -> None:
    """Map a record type (exact) or a family (prefix ending in ``.``) to a builder."""
    RULES[pattern] = builder


def builder_for(record_type: str, rules: Mapping[str, Builder] | None = None) -> Builder:
    table = RULES if rules is None else rules
    exact = table.get(record_type)
    if exact is not None:
        return exact
    best: tuple[int, Builder] | None = None
    for pattern, build in table.items():
        if pattern.endswith(".") and record_type.startswith(pattern):
            if best is None or len(pattern) > best[0]:
                best = (len(pattern), build)
    return best[1] if best else other


def to_ocsf(record: AuditRecord) -> dict[str, Any]:
    """The OCSF 1.8.0 event (a JSON-ready dict) for one audit record."""
    return builder_for(record.type)(record).to_dict()
