"""Typed OCSF 1.8.0 models for the event classes and objects Warden emits.

No maintained package covers OCSF's IAM and Application Activity classes (``py-ocsf-models``
has only findings, at 1.5.0), so these are our own, limited to the attributes we fill in. Names
and enum values follow the OCSF schema source; ``ocsf-1.8.0.schema.json`` beside this module is
compiled from that source (``tools/ocsf_schema.py``) and the tests validate every emitted event
against it.

``to_dict()`` drops unset (None) attributes and adds ``type_uid = class_uid * 100 +
activity_id`` plus the ``*_name`` captions OCSF derives from the ids.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

OCSF_VERSION = "1.8.0"

SEVERITY = {0: "Unknown", 1: "Informational", 2: "Low", 3: "Medium", 4: "High", 5: "Critical"}
STATUS = {0: "Unknown", 1: "Success", 2: "Failure", 99: "Other"}
CATEGORY = {2: "Findings", 3: "Identity & Access Management", 6: "Application Activity"}


def _plain(value: Any) -> Any:
    if isinstance(value, OCSFObject):
        return value.to_dict()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value  # plain JSON (``data``, ``unmapped``) is kept as is: it is hashed evidence


@dataclass(frozen=True, slots=True, kw_only=True)
class OCSFObject:
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                out[f.name] = _plain(value)
        return out


# -- objects ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Product(OCSFObject):
    name: str
    vendor_name: str
    version: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Metadata(OCSFObject):
    product: Product
    version: str = OCSF_VERSION
    uid: str | None = None
    sequence: int | None = None
    correlation_uid: str | None = None
    log_name: str | None = None
    logged_time: int | None = None
    profiles: list[str] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class User(OCSFObject):
    """``type_id``: 1 User (humans), 2 Admin (operators), 3 System (Warden), 4 Service (agents
    — OCSF 1.8 has no "AI agent" type)."""

    uid: str | None = None
    name: str | None = None
    type_id: int | None = None
    type: str | None = None
    email_addr: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Session(OCSFObject):
    uid: str | None = None
    created_time: int | None = None
    expiration_time: int | None = None
    credential_uid: str | None = None
    issuer: str | None = None
    expiration_reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy(OCSFObject):
    uid: str | None = None
    name: str | None = None
    version: str | None = None
    is_applied: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Authorization(OCSFObject):
    decision: str | None = None
    policy: Policy | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Actor(OCSFObject):
    user: User | None = None
    session: Session | None = None
    authorizations: list[Authorization] | None = None
    app_name: str | None = None
    invoked_by: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Service(OCSFObject):
    name: str | None = None
    uid: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class API(OCSFObject):
    operation: str
    service: Service | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkEndpoint(OCSFObject):
    name: str | None = None
    uid: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceDetails(OCSFObject):
    uid: str | None = None
    name: str | None = None
    type: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ManagedEntity(OCSFObject):
    """``type_id``: 2 User, 5 Policy (1.8.0 has no "Other": agents and credentials set ``type``)."""

    uid: str | None = None
    name: str | None = None
    type: str | None = None
    type_id: int | None = None
    data: dict[str, Any] | None = None
    policy: Policy | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FindingInfo(OCSFObject):
    uid: str
    title: str | None = None
    desc: str | None = None
    types: list[str] | None = None
    created_time: int | None = None


# -- event classes ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class BaseEvent(OCSFObject):
    CLASS_UID: ClassVar[int] = 0
    CLASS_NAME: ClassVar[str] = ""
    ACTIVITIES: ClassVar[dict[int, str]] = {}

    activity_id: int
    time: int  # milliseconds since the epoch
    metadata: Metadata
    severity_id: int = 1
    status_id: int | None = None
    status_detail: str | None = None
    message: str | None = None
    activity_name: str | None = None
    # security_control profile (declared in metadata.profiles when used)
    action_id: int | None = None
    disposition_id: int | None = None
    policy: Policy | None = None
    unmapped: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = OCSFObject.to_dict(self)
        category = self.CLASS_UID // 1000
        out.update(
            class_uid=self.CLASS_UID,
            class_name=self.CLASS_NAME,
            category_uid=category,
            category_name=CATEGORY[category],
            type_uid=self.CLASS_UID * 100 + self.activity_id,
            severity=SEVERITY.get(self.severity_id, "Other"),
        )
        out.setdefault("activity_name", self.ACTIVITIES.get(self.activity_id, "Other"))
        if self.status_id is not None:
            out["status"] = STATUS.get(self.status_id, "Other")
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountChange(BaseEvent):
    CLASS_UID = 3001
    CLASS_NAME = "Account Change"
    ACTIVITIES = {1: "Create", 2: "Enable", 5: "Disable", 6: "Delete", 99: "Other"}
    user: User
    actor: Actor | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Authentication(BaseEvent):
    CLASS_UID = 3002
    CLASS_NAME = "Authentication"
    ACTIVITIES = {1: "Logon", 2: "Logoff", 3: "Authentication Ticket", 5: "Service Ticket Renew"}
    user: User
    actor: Actor | None = None
    session: Session | None = None
    service: Service | None = None
    auth_protocol_id: int | None = None
    auth_protocol: str | None = None
    is_mfa: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EntityManagement(BaseEvent):
    CLASS_UID = 3004
    CLASS_NAME = "Entity Management"
    ACTIVITIES = {
        1: "Create",
        3: "Update",
        4: "Delete",
        8: "Enable",
        9: "Disable",
        11: "Deactivate",
        12: "Suspend",
        13: "Resume",
        99: "Other",
    }
    entity: ManagedEntity
    entity_result: ManagedEntity | None = None
    actor: Actor | None = None
    comment: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UserAccessManagement(BaseEvent):
    CLASS_UID = 3005
    CLASS_NAME = "User Access Management"
    ACTIVITIES = {1: "Assign Privileges", 2: "Revoke Privileges", 99: "Other"}
    user: User
    privileges: list[str]
    actor: Actor | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class APIActivity(BaseEvent):
    CLASS_UID = 6003
    CLASS_NAME = "API Activity"
    ACTIVITIES = {1: "Create", 2: "Read", 3: "Update", 4: "Delete", 99: "Other"}
    actor: Actor
    api: API
    src_endpoint: NetworkEndpoint
    resources: list[ResourceDetails] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DetectionFinding(BaseEvent):
    CLASS_UID = 2004
    CLASS_NAME = "Detection Finding"
    ACTIVITIES = {1: "Create", 2: "Update", 3: "Close", 99: "Other"}
    finding_info: FindingInfo
    is_alert: bool | None = None
    resources: list[ResourceDetails] | None = None
