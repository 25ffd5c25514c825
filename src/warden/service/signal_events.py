"""Which audit records become which Shared Signals events (CAEP, RISC, SSF), and their subjects.

Pure: an audit record in, ``(event type, sub_id, payload)`` out. The audit log is the source
because it is durable before anything is acknowledged: an event derived from it cannot be lost
between "the task ended" and "the event was queued".

- ``task.completed|failed|expired|revoked`` → CAEP ``session-revoked``; subject: the agent (its
  SPIFFE ID) and the task as the session; the payload lists the task's revoked credentials as
  RFC 9493 ``jwt_id`` identifiers.
- ``credential.revoked`` of one credential (RFC 7009) → ``session-revoked`` for that ``jwt_id``.
- ``agent.suspended|decommissioned`` (the kill switch) → RISC ``account-disabled``, followed by
  the ``session-revoked`` of every task the cascade ended; ``agent.reactivated`` →
  ``account-enabled``.
- ``key.rotated`` / ``key.retired`` → CAEP ``credential-change`` (``signing-key``, create or
  delete); a renewal whose DPoP binding differs from the credential it replaces →
  ``credential-change`` (``dpop-key``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from warden.core.model import AuditRecord

CAEP = "https://schemas.openid.net/secevent/caep/event-type/"
RISC = "https://schemas.openid.net/secevent/risc/event-type/"
SSF = "https://schemas.openid.net/secevent/ssf/event-type/"
SESSION_REVOKED = CAEP + "session-revoked"
CREDENTIAL_CHANGE = CAEP + "credential-change"
ACCOUNT_DISABLED = RISC + "account-disabled"
ACCOUNT_ENABLED = RISC + "account-enabled"
VERIFICATION = SSF + "verification"
STREAM_UPDATED = SSF + "stream-updated"

# what a receiver may ask for (verification and stream-updated are always delivered)
EVENTS_SUPPORTED = (SESSION_REVOKED, CREDENTIAL_CHANGE, ACCOUNT_DISABLED, ACCOUNT_ENABLED)
ALWAYS = frozenset({VERIFICATION, STREAM_UPDATED})

TASK_ENDS = ("task.completed", "task.failed", "task.expired", "task.revoked")
SOURCE_TYPES = (
    *TASK_ENDS,
    "credential.revoked",
    "credential.renewed",
    "agent.suspended",
    "agent.decommissioned",
    "agent.reactivated",
    "key.rotated",
    "key.retired",
)

Event = tuple[str, dict[str, Any], dict[str, Any]]  # (type, sub_id, payload)
SpiffeOf = Callable[[str], str | None]


def _initiator(actor: str) -> str:
    """CAEP ``initiating_entity``: Warden itself, an agent (``user``), or an operator."""
    if actor == "warden":
        return "system"
    if actor.startswith("spiffe://"):
        return "user"
    return "admin"


def _reason(text: str) -> dict[str, str]:
    return {"en": text[:300]} if text else {}


def _agent_subject(record: AuditRecord, spiffe_of: SpiffeOf) -> dict[str, Any]:
    name = record.agent or ""
    uri = spiffe_of(name) if name else None
    return {"format": "uri", "uri": uri} if uri else {"format": "opaque", "id": name}


def events_for(record: AuditRecord, *, issuer: str, spiffe_of: SpiffeOf) -> list[Event]:
    data = record.data
    base: dict[str, Any] = {
        "event_timestamp": int(record.ts),
        "initiating_entity": _initiator(record.actor),
    }
    kind = record.type
    if kind in TASK_ENDS and record.task_id:
        subject = {
            "format": "complex",
            "user": _agent_subject(record, spiffe_of),
            "session": {"format": "opaque", "id": record.task_id},
        }
        jtis = data.get("revoked_credentials") or []
        reason = _reason(str(data.get("reason") or kind.removeprefix("task.")))
        payload = {
            **base,
            **({"reason_admin": reason} if reason else {}),
            "task_status": kind.removeprefix("task."),
            "credentials": [{"format": "jwt_id", "iss": issuer, "jti": str(j)} for j in jtis],
        }
        return [(SESSION_REVOKED, subject, payload)]
    if kind == "credential.revoked":
        if str(data.get("reason", "")).startswith("task "):
            return []  # revoked with its task: the task's session-revoked covers it
        subject = {"format": "jwt_id", "iss": issuer, "jti": str(data.get("jti", ""))}
        return [(SESSION_REVOKED, subject, {**base, "reason_admin": _reason("revoked")})]
    if kind in ("agent.suspended", "agent.decommissioned"):
        payload = {**base, "agent_status": str(data.get("to", kind.removeprefix("agent.")))}
        reason = _reason(str(data.get("reason") or ""))
        if reason:
            payload["reason_admin"] = reason
        return [(ACCOUNT_DISABLED, _agent_subject(record, spiffe_of), payload)]
    if kind == "agent.reactivated":
        return [(ACCOUNT_ENABLED, _agent_subject(record, spiffe_of), base)]
    if kind in ("key.rotated", "key.retired"):
        payload = {
            **base,
            "credential_type": "signing-key",
            "change_type": "create" if kind == "key.rotated" else "delete",
            "friendly_name": f"Warden signing key {data.get('kid', '')}",
            "kid": str(data.get("kid", "")),
        }
        return [(CREDENTIAL_CHANGE, {"format": "uri", "uri": issuer}, payload)]
    if kind == "credential.renewed" and "previous_jkt" in data:
        before, after = data.get("previous_jkt"), data.get("jkt")
        if before == after:
            return []
        change = "create" if before is None else "delete" if after is None else "update"
        subject = {
            "format": "complex",
            "user": _agent_subject(record, spiffe_of),
            "session": {"format": "opaque", "id": record.task_id or ""},
        }
        payload = {
            **base,
            "credential_type": "dpop-key",
            "change_type": change,
            "jkt": after,
            "previous_jkt": before,
            "jti": data.get("jti"),
        }
        return [(CREDENTIAL_CHANGE, subject, payload)]
    return []
