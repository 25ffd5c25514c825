"""Approval-required decisions, one-time grants bound to a digest, and the approval API."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.approvals.conftest import Approvers, make_world
from warden.approvals import ApprovalSettings
from warden.bootstrap import Warden

pytestmark = pytest.mark.approvals

DELETE = "tickets.read tickets.delete"


def _task(aw: Approvers, scope: str = DELETE, **kw: Any) -> dict[str, Any]:
    aw.agent()
    return aw.start_task(scope=scope, **kw)


def _held(aw: Approvers, task: dict[str, Any], tool: str, **context: Any) -> dict[str, Any]:
    body = aw.call(task, tool, **context)
    assert body["decision"] is False, body
    assert body["context"]["reason"] == "approval_required", body
    request: dict[str, Any] = body["context"]["approval_request"]
    return request


def test_a_destructive_call_is_held_approved_once_and_then_held_again(aw: Approvers) -> None:
    task = _task(aw)
    body = aw.call(task, "tickets.delete", arguments={"ticket": "T-1"})
    ctx = body["context"]
    assert body["decision"] is False
    assert ctx["reason"] == "approval_required"
    assert ctx["reasons"] == ["delete-needs-owner"]
    # AuthZEN Access Request & Approval profile members
    assert ctx["evaluation_id"] == ctx["decision_id"]
    assert ctx["evaluated_at"].endswith("Z")
    assert ctx["access_request"]["expires_at"]
    handle = ctx["approval_request"]
    assert handle["status"] == "pending"
    assert handle["approvers"] == ["owner"]
    assert handle["status_endpoint"].endswith(f"/v1/approvals/{handle['id']}")
    assert handle["wait_endpoint"].endswith(f"/v1/approvals/{handle['id']}/wait")

    approved = aw.approve(handle["id"], reason="ticket is a duplicate")
    assert approved.status_code == 200, approved.text
    record = approved.json()
    assert record["status"] == "approved"
    assert record["decided_by"] == "alice@example.com"
    assert record["decision_auth"]["method"] == "operator_token"
    assert record["seen"]["arguments"] == {"ticket": "T-1"}
    assert record["seen"]["digest"] == record["digest"]

    retry = aw.call(task, "tickets.delete", arguments={"ticket": "T-1"})
    assert retry["decision"] is True, retry
    assert retry["context"]["approval"] == {"granted": True, "request_id": handle["id"]}

    again = _held(aw, task, "tickets.delete", arguments={"ticket": "T-1"})
    assert again["id"] != handle["id"]

    shown = aw.client.get(f"/v1/approvals/{handle['id']}", headers=aw.admin).json()
    assert shown["used"] is True and shown["used_by_decision"] == retry["context"]["decision_id"]
    types = [r["type"] for r in aw.audit("approval.")]
    assert types[:3] == ["approval.requested", "approval.approved", "approval.used"]
    decisions = aw.audit("authz.decision")
    assert decisions[-2]["data"]["approval"]["granted"] is True


def test_a_grant_covers_only_the_exact_call(aw: Approvers) -> None:
    task = _task(aw)
    request = _held(aw, task, "tickets.delete", arguments={"ticket": "T-1"})
    assert aw.approve(request["id"]).status_code == 200
    other = _held(aw, task, "tickets.delete", arguments={"ticket": "T-2"})
    assert other["id"] != request["id"]
    # the grant is still there for the approved arguments
    assert aw.call(task, "tickets.delete", arguments={"ticket": "T-1"})["decision"] is True
    # and a second task of the same agent is not covered either
    task2 = aw.start_task(scope=DELETE)
    _held(aw, task2, "tickets.delete", arguments={"ticket": "T-1"})


def test_identical_pending_requests_coalesce(aw: Approvers) -> None:
    task = _task(aw)
    first = _held(aw, task, "tickets.delete", arguments={"ticket": "T-1"})
    second = _held(aw, task, "tickets.delete", arguments={"ticket": "T-1"})
    assert second["id"] == first["id"] and second["coalesced"] is True
    assert len(aw.audit("approval.requested")) == 1


def test_a_plain_forbid_is_never_approval_required(aw: Approvers) -> None:
    task = _task(aw, scope="tickets.purge")
    body = aw.call(task, "tickets.purge", arguments={})
    assert body["decision"] is False
    assert "approval_request" not in body["context"]
    assert body["context"]["reasons"] == ["no-purge"]


def test_grants_expire(aw: Approvers) -> None:
    task = _task(aw)
    request = _held(aw, task, "tickets.delete", arguments={"ticket": "T-1"})
    assert aw.approve(request["id"]).status_code == 200
    aw.clock.advance(aw.warden.settings.approvals.grant_ttl + 1)
    aw.warden.govern()
    again = _held(aw, task, "tickets.delete", arguments={"ticket": "T-1"})
    assert again["id"] != request["id"]


def test_bad_approvals_are_refused_and_recorded(aw: Approvers) -> None:
    task = _task(aw)
    request = _held(aw, task, "tickets.delete", arguments={"ticket": "T-1"})
    rid = request["id"]
    url = f"/v1/approvals/{rid}/approve"
    digest = aw.client.get(f"/v1/approvals/{rid}", headers=aw.admin).json()["digest"]

    # an agent can never approve, not even its own request
    r = aw.client.post(
        url, json={"digest": digest}, headers={"Authorization": f"Bearer {task['access_token']}"}
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "agent_cannot_approve"
    # the wrong role
    r = aw.client.post(url, json={"digest": digest}, headers=aw.as_("auditor"))
    assert r.status_code == 403 and r.json()["error"]["code"] == "approval_not_permitted"
    # someone else's request (bob is an approver, but not this agent's owner)
    r = aw.client.post(url, json={"digest": digest}, headers=aw.as_("bob"))
    assert r.status_code == 403 and r.json()["error"]["code"] == "approval_not_permitted"
    # approving something other than what was shown
    r = aw.client.post(url, json={"digest": "0" * 64}, headers=aw.as_("alice"))
    assert r.status_code == 409 and r.json()["error"]["code"] == "approval_digest_mismatch"
    r = aw.client.post(url, json={}, headers=aw.as_("alice"))
    assert r.status_code == 409
    # no token at all
    assert aw.client.post(url, json={"digest": digest}).status_code == 401
    # unknown request
    r = aw.client.post("/v1/approvals/apr_nope/approve", json={}, headers=aw.as_("alice"))
    assert r.status_code == 404
    # denying needs a reason
    r = aw.client.post(f"/v1/approvals/{rid}/deny", json={}, headers=aw.as_("alice"))
    assert r.status_code == 400

    assert aw.approve(rid).status_code == 200
    # already decided
    r = aw.approve(rid)
    assert r.status_code == 409 and r.json()["error"]["code"] == "approval_closed"
    assert aw.call(task, "tickets.delete", arguments={"ticket": "T-1"})["decision"] is True
    # already used
    r = aw.approve(rid)
    assert r.status_code == 409 and "used" in r.json()["error"]["message"]

    refused = [r["data"]["reason"] for r in aw.audit("approval.refused")]
    assert refused.count("agent") == 1
    assert refused.count("not_permitted") == 2
    assert refused.count("digest_mismatch") == 2
    assert refused.count("closed") == 2
    assert "not_found" in refused


def test_a_denied_action_is_not_asked_again_during_the_cooldown(tmp_path: Path) -> None:
    for aw in make_world(tmp_path, approvals=ApprovalSettings(deny_cooldown=60)):
        _denied_then_asked_again(aw)


def _denied_then_asked_again(aw: Approvers) -> None:
    task = _task(aw)
    request = _held(aw, task, "tickets.delete", arguments={"ticket": "T-1"})
    r = aw.client.post(
        f"/v1/approvals/{request['id']}/deny",
        json={"reason": "not this one"},
        headers=aw.as_("alice"),
    )
    assert r.status_code == 200 and r.json()["status"] == "denied"
    body = aw.call(task, "tickets.delete", arguments={"ticket": "T-1"})
    assert body["decision"] is False
    assert body["context"]["reason"] == "approval_denied"
    assert body["context"]["approval_request"]["id"] == request["id"]
    aw.clock.advance(aw.warden.settings.approvals.deny_cooldown + 1)
    aw.warden.govern()
    assert _held(aw, task, "tickets.delete", arguments={"ticket": "T-1"})["id"] != request["id"]


def test_escalation_to_the_group_and_denial_when_nobody_answers(aw: Approvers) -> None:
    task = _task(aw, scope="payments.refund")
    request = _held(aw, task, "payments.refund", arguments={"invoice": "INV-1", "amount": 90})
    assert request["approvers"] == ["owner", "group:security"]
    assert request["progress"] == {"current_step": 1, "total_steps": 2, "step_name": "owner"}
    # carol is in the security group, but the owner's level comes first
    r = aw.approve(request["id"], who="carol")
    assert r.status_code == 403
    aw.clock.advance(31)
    aw.warden.govern()
    shown = aw.client.get(f"/v1/approvals/{request['id']}", headers=aw.admin).json()
    assert shown["level"] == 2 and shown["awaiting"] == "group:security"
    aw.clock.advance(31)
    aw.warden.govern()
    shown = aw.client.get(f"/v1/approvals/{request['id']}", headers=aw.admin).json()
    assert shown["status"] == "denied" and shown["decided_by"] == "warden"
    assert "no approver answered" in shown["decision_reason"]
    types = [r["type"] for r in aw.audit("approval.")]
    assert "approval.escalated" in types and "approval.timed_out" in types
    body = aw.call(task, "payments.refund", arguments={"invoice": "INV-1", "amount": 90})
    assert body["context"]["reason"] == "approval_denied"
    # approving a request that timed out is too late
    late = aw.approve(request["id"], who="carol")
    assert late.status_code == 409 and late.json()["error"]["code"] == "approval_closed"


def test_after_escalation_the_group_may_approve(aw: Approvers) -> None:
    task = _task(aw, scope="payments.refund")
    request = _held(aw, task, "payments.refund", arguments={"invoice": "INV-2", "amount": 5})
    aw.clock.advance(31)
    aw.warden.govern()
    assert aw.approve(request["id"], who="carol").status_code == 200
    body = aw.call(task, "payments.refund", arguments={"invoice": "INV-2", "amount": 5})
    assert body["decision"] is True


def test_separation_of_duties(aw: Approvers) -> None:
    aw.agent()
    task = aw.start_for("tickets.export", "dave@example.com")
    request = _held(aw, task, "tickets.export", arguments={"format": "csv"})
    r = aw.approve(request["id"], who="dave")
    assert r.status_code == 403 and "separation of duties" in r.json()["error"]["message"]
    assert aw.approve(request["id"], who="bob").status_code == 200


def test_the_flood_guard_caps_pending_requests(tmp_path: Path) -> None:
    for aw in make_world(tmp_path, approvals=ApprovalSettings(max_pending_per_agent=2)):
        task = _task(aw)
        _held(aw, task, "tickets.delete", arguments={"ticket": "T-1"})
        _held(aw, task, "tickets.delete", arguments={"ticket": "T-2"})
        body = aw.call(task, "tickets.delete", arguments={"ticket": "T-3"})
        assert body["decision"] is False
        assert body["context"]["reason"] == "approval_rate_limited"
        assert len(aw.audit("approval.rate_limited")) == 1
        # coalescing still answers the identical, already pending call
        assert _held(aw, task, "tickets.delete", arguments={"ticket": "T-1"})["coalesced"]


def test_ending_the_task_cancels_its_pending_requests(aw: Approvers) -> None:
    task = _task(aw)
    request = _held(aw, task, "tickets.delete", arguments={"ticket": "T-1"})
    r = aw.client.post(f"/v1/tasks/{task['task_id']}/complete", json={}, headers=aw.admin)
    assert r.status_code == 200
    aw.warden.govern()
    shown = aw.client.get(f"/v1/approvals/{request['id']}", headers=aw.admin).json()
    assert shown["status"] == "cancelled"
    assert aw.approve(request["id"]).status_code == 409


def test_monitor_mode_lets_the_call_through_and_says_approval_would_be_needed(
    aw: Approvers,
) -> None:
    task = _task(aw)
    r = aw.client.put(
        "/v1/policies/modes",
        json={"kind": "agent", "value": "support-bot", "mode": "monitor"},
        headers=aw.admin,
    )
    assert r.status_code == 200, r.text
    body = aw.call(task, "tickets.delete", arguments={"ticket": "T-1"})
    assert body["decision"] is True
    assert body["context"]["monitor"]["would_require_approval"] is True
    assert aw.audit("approval.requested") == []


def test_listing_showing_and_waiting(aw: Approvers) -> None:
    task = _task(aw)
    request = _held(aw, task, "tickets.delete", arguments={"ticket": "T-1"})
    rid = request["id"]
    mine = aw.client.get("/v1/approvals?mine=true", headers=aw.as_("alice")).json()
    assert [a["id"] for a in mine["approvals"]] == [rid]
    assert aw.client.get("/v1/approvals?mine=true", headers=aw.as_("bob")).json()["approvals"] == []
    listed = aw.client.get("/v1/approvals?status=pending", headers=aw.admin).json()
    assert [a["id"] for a in listed["approvals"]] == [rid]
    assert aw.client.get("/v1/approvals?status=nope", headers=aw.admin).status_code == 400

    agent = {"Authorization": f"Bearer {task['access_token']}"}
    handle = aw.client.get(f"/v1/approvals/{rid}", headers=agent).json()
    assert handle["task"]["status"] == "pending"
    assert "arguments" not in handle and "decided_by" not in handle
    waited = aw.client.get(f"/v1/approvals/{rid}/wait?timeout=0", headers=agent)
    assert waited.status_code == 200 and waited.headers["retry-after"] == "1"
    assert aw.approve(rid).status_code == 200
    done = aw.client.get(f"/v1/approvals/{rid}/wait?timeout=5", headers=agent).json()
    assert done["task"]["status"] == "approved"
    assert done["result"]["mode"] == "reevaluate"
    assert done["result"]["approval"]["approved_until"]

    other = aw.start_task(scope=DELETE)
    r = aw.client.get(
        f"/v1/approvals/{rid}", headers={"Authorization": f"Bearer {other['access_token']}"}
    )
    assert r.status_code == 403


def test_operators_are_created_by_admins_only(aw: Approvers) -> None:
    r = aw.client.post(
        "/v1/operators", json={"name": "x", "role": "approver"}, headers=aw.as_("alice")
    )
    assert r.status_code == 403
    r = aw.client.post("/v1/operators", json={"name": "x", "role": "boss"}, headers=aw.admin)
    assert r.status_code == 400
    ops = aw.client.get("/v1/operators", headers=aw.admin).json()["operators"]
    assert {o["name"]: o["human"] for o in ops}["alice"] == "alice@example.com"
    assert all("token" not in o for o in ops)


def test_a_listing_opens_no_request_and_spends_no_grant(aw: Approvers) -> None:
    """A PEP filtering a list (``context.listing``) asks whether to show a tool, not to run it."""
    task = _task(aw)
    listed = aw.call(task, "tickets.delete", listing=True)
    assert listed["decision"] is False
    assert listed["context"]["reason"] == "approval_required"
    assert "approval_request" not in listed["context"]
    assert aw.audit("approval.requested") == []  # nobody was asked to approve a listing
    # a call with no arguments is approved; listing the tool (also no arguments) leaves the grant
    request = _held(aw, task, "tickets.delete", arguments={})
    assert aw.approve(request["id"]).status_code == 200
    again = aw.call(task, "tickets.delete", listing=True)
    assert again["decision"] is False and "approval_request" not in again["context"]
    assert aw.call(task, "tickets.delete", arguments={})["decision"] is True
    assert [r["type"] for r in aw.audit("approval.")] == [
        "approval.requested",
        "approval.approved",
        "approval.used",
    ]


def test_the_controls_report_sees_approvals_for_high_risk_actions(aw: Approvers) -> None:
    """CP-APPR-01 is evaluated from the records this feature writes: held, approved, used once."""
    start = aw.warden.clock.now() - 1
    task = _task(aw)
    handle = _held(aw, task, "tickets.delete", arguments={"ticket": "T-9"})
    assert aw.approve(handle["id"]).status_code == 200
    assert aw.call(task, "tickets.delete", arguments={"ticket": "T-9"})["decision"] is True
    report = aw.warden.controls_report(start, aw.warden.clock.now() + 1)
    control = next(c for c in report["controls"] if c["id"] == "CP-APPR-01")
    assert control["status"] == "pass", (control.get("violations"), control.get("notes"))
    assert control["checked"] >= 2


def test_another_replica_shows_the_request_as_the_database_has_it(aw: Approvers) -> None:
    """An operator on replica B sees a grant spent on A at once, not B's cached copy."""
    task = _task(aw)
    handle = _held(aw, task, "tickets.delete", arguments={"ticket": "T-4"})
    other = Warden(aw.warden.settings, clock=aw.clock, primary=False)
    try:
        assert other.approvals.get(handle["id"]).status.value == "pending"
        assert aw.approve(handle["id"]).status_code == 200
        assert aw.call(task, "tickets.delete", arguments={"ticket": "T-4"})["decision"] is True
        # B cached the request as pending and has heard nothing (no replication loop runs)
        seen = other.approvals.get(handle["id"])
        assert seen.status.value == "approved" and seen.used_at is not None
    finally:
        other.close()


def test_a_world_whose_replication_never_started_is_never_stale(tmp_path: Path) -> None:
    """The staleness bound is armed by the replication loop; a world that never starts it (as
    this one) serves what it wrote itself and must not refuse with state_stale once a test
    outlives the bound on a slow machine."""
    for aw in make_world(tmp_path, replication_max_staleness=0.2):
        task = _task(aw)
        time.sleep(0.5)
        body = aw.call(task, "tickets.read")
        assert body["decision"] is True, body
