"""OCSF export: every audit record maps to an OCSF 1.8.0 event that validates against the schema
compiled from the OCSF source, with the class the frameworks reference prescribes."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from warden.core.audit import GENESIS_HASH, seal, verify_chain
from warden.core.model import AuditDraft, AuditRecord
from warden.ocsf import schema, to_ocsf

from .conftest import World

pytestmark = pytest.mark.governance

VALIDATOR = Draft202012Validator(schema())


def class_errors(event: dict[str, Any]) -> list[str]:
    """Errors against the event's own class (readable, unlike the top-level oneOf)."""
    own = Draft202012Validator(
        {"$ref": f"#/$defs/class_{event.get('class_uid')}", "$defs": schema()["$defs"]}
    )
    return [f"{list(e.path)}: {e.message}" for e in own.iter_errors(event)]


# record types other features add in parallel, in the shapes they use
FOREIGN = [
    ("approval.requested", {"approval_id": "apr_1", "action": "payments.refund", "digest": "ab"}),
    ("approval.granted", {"approval_id": "apr_1", "approver": "bob@example.com"}),
    ("approval.denied", {"approval_id": "apr_2", "approver": "bob@example.com"}),
    ("approval.expired", {"approval_id": "apr_3"}),
    ("finding.raised", {"finding_id": "f1", "kind": "new_tool", "severity": "high"}),
    ("finding.resolved", {"finding_id": "f1"}),
    ("lease.issued", {"lease_id": "l1", "issued_at": 1.0, "expires_at": 61.0}),
    ("lease.revoked", {"lease_id": "l1", "reason": "task completed"}),
    ("owner.deactivated", {"owner": "bob@example.com", "reason": "left"}),
    ("owner.reactivated", {"owner": "bob@example.com"}),
    ("certification.started", {"campaign": "cmp_1", "reviews": 2}),
    ("certification.reduced", {"review": "rev_1", "removed": ["email.send"], "kept": ["a"]}),
    ("certification.kept", {"review": "rev_2", "entitlements": ["tickets.read"]}),
    ("delegation.created", {"parent": "task_1", "child": "task_2"}),
    ("something.nobody.mapped", {"x": 1}),
]


def _scenario(world: World) -> list[AuditRecord]:
    world.register("bot")
    task = world.start_task("bot", "tickets.read email.send tickets.delete")
    token, sid = task["access_token"], task["spiffe_id"]
    renewed = world.client.post(
        "/oauth2/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": token,
            "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
        },
    )
    assert renewed.status_code == 200, renewed.text
    world.decide(token, sid, "tickets.read")
    world.decide(token, sid, "email.send", arguments={"to": "x@elsewhere.test"})
    world.decide(token, sid, "tickets.delete")  # monitor-mode policy: let through, logged
    world.decide(token, sid, "payments.refund")  # out of scope
    world.decide("not-a-token", sid, "tickets.read")
    world.client.post(f"/v1/tasks/{task['task_id']}/complete", json={}, headers=world.admin)
    world.client.post("/v1/agents/bot/suspend", json={"reason": "drill"}, headers=world.admin)
    world.client.post("/v1/agents/bot/decommission", json={}, headers=world.admin)
    world.warden.writer.flush()
    records = list(world.warden.store.iter_audit())
    head = records[-1]
    seq, prev = head.seq, head.hash
    for kind, data in FOREIGN:
        seq += 1
        rec = seal(
            seq,
            prev,
            AuditDraft(
                ts=head.ts + seq,
                type=kind,
                actor="warden",
                data=data,
                agent="bot",
                task_id=task["task_id"],
            ),
        )
        records.append(rec)
        prev = rec.hash
    return records


def test_every_record_becomes_a_schema_valid_ocsf_event(world: World) -> None:
    records = _scenario(world)
    types = {r.type for r in records}
    assert {
        "task.started",
        "credential.issued",
        "authz.decision",
        "credential.revoked",
        "agent.suspended",
        "agent.decommissioned",
        "task.completed",
    } <= types
    for rec in records:
        event = to_ocsf(rec)
        assert class_errors(event) == [], rec.type
        assert VALIDATOR.is_valid(event), rec.type
        assert event["type_uid"] == event["class_uid"] * 100 + event["activity_id"]
        assert event["metadata"]["sequence"] == rec.seq
        assert event["metadata"]["version"] == "1.8.0"
        assert event["time"] == round(rec.ts * 1000)


CLASSES = {
    "credential.issued": 3002,
    "credential.renewed": 3002,
    "task.started": 3002,
    "task.completed": 3002,
    "authz.decision": 6003,
    "approval.granted": 6003,
    "agent.registered": 3004,
    "agent.suspended": 3004,
    "credential.revoked": 3004,
    "owner.deactivated": 3001,
    "finding.raised": 2004,
    "certification.reduced": 3005,
    "something.nobody.mapped": 6003,
}


def test_classes_follow_the_reference_mapping(world: World) -> None:
    records = {r.type: r for r in _scenario(world)}
    assert {t: to_ocsf(records[t])["class_uid"] for t in CLASSES} == CLASSES


def test_decisions_carry_the_security_control_verdict(world: World) -> None:
    events = [to_ocsf(r) for r in _scenario(world) if r.type == "authz.decision"]
    by_op = {(e["api"]["operation"], e["disposition_id"]) for e in events}
    assert ("tickets.read", 1) in by_op  # allowed
    assert ("email.send", 2) in by_op  # blocked by policy
    assert ("tickets.delete", 17) in by_op  # monitor mode: let through, logged
    denied = next(e for e in events if e["api"]["operation"] == "email.send")
    assert denied["action_id"] == 2
    assert denied["policy"]["uid"] == "no-external-email"
    assert denied["actor"]["authorizations"][0] == {
        "decision": "deny",
        "policy": denied["policy"],
    }
    assert "security_control" in denied["metadata"]["profiles"]


def test_the_export_alone_reverifies_the_hash_chain(world: World) -> None:
    records = _scenario(world)
    rebuilt = []
    for event in (to_ocsf(r) for r in records):
        w = event["unmapped"]["warden"]
        rebuilt.append(
            AuditRecord(
                w["seq"],
                w["ts"],
                w["type"],
                w["actor"],
                w["data"],
                w["agent"],
                w["task_id"],
                w["decision_id"],
                w["prev_hash"],
                w["hash"],
            )
        )
    assert rebuilt[0].prev_hash == GENESIS_HASH
    assert verify_chain(rebuilt).ok
    rebuilt[3] = replace(rebuilt[3], data={**rebuilt[3].data, "decision": "allow"})
    assert verify_chain(rebuilt).first_bad_seq == 4


ISSUED = seal(
    1,
    GENESIS_HASH,
    AuditDraft(
        ts=1_800_000_000.5,
        type="credential.issued",
        actor="spiffe://example.org/agent/bot",
        data={"jti": "j1", "audience": ["warden"], "issued_at": 1.8e9, "expires_at": 1.8e9 + 300},
        agent="bot",
        task_id="task_1",
    ),
)


@pytest.mark.parametrize(
    "breakage",
    [
        lambda e: e.pop("time"),
        lambda e: e.pop("user"),  # required by Authentication
        lambda e: e["metadata"].pop("product"),
        lambda e: e.update(activity_id=42),  # not an Authentication activity
        lambda e: e.update(type_uid=300299),
        lambda e: e.update(sevrity_id=1),  # misspelt attribute
        lambda e: e["session"].update(expiration_time="soon"),
        lambda e: e["user"].update(type_id=7),
    ],
)
def test_the_schema_rejects_broken_events(breakage: Any) -> None:
    event = to_ocsf(ISSUED)
    assert VALIDATOR.is_valid(event)
    broken = copy.deepcopy(event)
    breakage(broken)
    assert not VALIDATOR.is_valid(broken)
