"""The binding's mapping and error shapes, including approval-required decisions (the
approval workflow itself arrives with issue 5; its decision context is rendered already)."""

from __future__ import annotations

import pytest

from warden.mcp import mapping as m

pytestmark = pytest.mark.enforcement

SUBJECT = {"type": "agent", "id": "spiffe://example.org/agent/a", "properties": {"token": "t"}}


def test_a_tool_call_is_the_tool_as_action_on_the_upstream_server() -> None:
    request = m.tool_request(SUBJECT, "email.send", "helpdesk", {"to": "a@example.com"})
    assert request == {
        "subject": SUBJECT,
        "action": {"name": "email.send"},
        "resource": {"type": "MCPServer", "id": "helpdesk"},
        "context": {
            "mcp": {"method": "tools/call", "server": "helpdesk"},
            "arguments": {"to": "a@example.com"},
        },
    }


def test_an_approval_required_deny_carries_the_request_id_and_how_to_wait() -> None:
    decision = {
        "decision": False,
        "context": {
            "decision_id": "dec_1",
            "reasons": ["refunds-need-owner"],
            "approval": {"id": "apr_42", "status": "pending", "expires_at": 1900000000},
        },
    }
    error = m.denial_error("payments.refund", decision)
    assert error["code"] == -32001
    assert "apr_42" in error["message"]
    data = error["data"]
    assert data["reason"] == "approval_required"
    assert data["approval"]["id"] == "apr_42"
    assert data["approval"]["wait_endpoint"] == "/v1/approvals/apr_42/wait"
    assert data["approval"]["expires_at"] == 1900000000
    assert data["decision_id"] == "dec_1" and data["policies"] == ["refunds-need-owner"]
    # an approval id given as a bare string works too; a tool that needs approval stays listed
    assert (
        m.denial_error("x", {"decision": False, "context": {"approval": "apr_7"}})["data"][
            "approval"
        ]["id"]
        == "apr_7"
    )
    assert m.listing_verdict(decision)


def test_the_step_up_decision_context_of_warden_approvals() -> None:
    """The shape Warden's approvals (issue 5) answer with: an AuthZEN Access Request handle."""
    decision = {
        "decision": False,
        "context": {
            "decision_id": "dec_9",
            "reason": "approval_required",
            "reasons": ["deletes-need-owner-approval"],
            "approval_request": {
                "id": "apr_9",
                "status": "pending",
                "status_endpoint": "http://127.0.0.1:8080/v1/approvals/apr_9",
                "wait_endpoint": "http://127.0.0.1:8080/v1/approvals/apr_9/wait",
                "expires_at": "2026-11-28T18:00:00Z",
            },
        },
    }
    data = m.denial_error("tickets.delete", decision)["data"]
    assert data["reason"] == "approval_required"
    assert data["approval"]["id"] == "apr_9"
    assert data["approval"]["wait_endpoint"].endswith("/v1/approvals/apr_9/wait")
    assert m.listing_verdict(decision)
    # a decided approval is no request to wait for
    denied = {
        "decision": False,
        "context": {
            "reason": "approval_denied",
            "approval": {"granted": False, "request_id": "apr_9"},
        },
    }
    error = m.denial_error("tickets.delete", denied)
    assert error["data"]["reason"] == "approval_denied"
    assert "refused by its approver" in error["message"]
    assert not m.listing_verdict(denied)


@pytest.mark.parametrize(
    ("context", "shown"),
    [
        ({"reason": "out_of_scope"}, False),
        ({"reason": "invalid_credential"}, False),
        ({"reasons": ["no-bulk-export"]}, False),  # a forbid that applies without arguments
        ({"reasons": []}, True),  # no permit yet: one may match once arguments are known
        # the same, in the one shape every Warden answer has now (ADR 0101)
        ({"reason": "out_of_scope", "reasons": []}, False),
        ({"reason": "policy", "reasons": ["no-bulk-export"]}, False),
        ({"reason": "policy", "reasons": []}, True),
    ],
)
def test_listing_hides_only_what_is_denied_whatever_the_arguments(
    context: dict[str, object], shown: bool
) -> None:
    assert m.listing_verdict({"decision": False, "context": context}) is shown
    assert (
        m.listing_verdict({"decision": False, "context": context}, takes_arguments=False) is False
    )
    assert m.listing_verdict({"decision": True, "context": context}) is True


def test_listing_requests_are_marked_and_show_what_needs_approval() -> None:
    subject = {"type": "agent", "id": "spiffe://example.org/agent/a"}
    listed = m.for_listing(m.tool_request(subject, "tickets.delete", "helpdesk", None))
    assert listed["context"] == {
        "mcp": {"method": "tools/call", "server": "helpdesk"},
        "listing": True,
    }
    assert "listing" not in m.tool_request(subject, "tickets.delete", "helpdesk", {})["context"]
    # Warden answers a listing that needs approval without opening a request: still shown
    held = {"decision": False, "context": {"reason": "approval_required", "reasons": ["x"]}}
    assert m.listing_verdict(held) is True


def test_deny_messages_say_why() -> None:
    scope = m.denial_error("a.b", {"decision": False, "context": {"reason": "out_of_scope"}})
    assert scope["message"] == "`a.b` is outside this task's scope"
    default = m.denial_error("a.b", {"decision": False, "context": {"reasons": []}})
    assert default["message"] == "`a.b` is not permitted by any policy"
    assert default["data"]["reason"] == "policy"


def test_deny_messages_read_the_policy_code() -> None:
    """``reason: policy`` with the forbids in ``reasons`` reads as a policy deny, not a code."""
    body = {"decision": False, "context": {"reason": "policy", "reasons": ["no-purge"]}}
    error = m.denial_error("tickets.purge", body)
    assert error["message"] == "`tickets.purge` is denied by policy no-purge"
    assert error["data"]["reason"] == "policy" and error["data"]["policies"] == ["no-purge"]
    default = m.denial_error("a.b", {"decision": False, "context": {"reason": "policy"}})
    assert default["message"] == "`a.b` is not permitted by any policy"
    mismatch = m.denial_error("a.b", {"context": {"reason": "tool_mismatch", "reasons": []}})
    assert "name different tools" in mismatch["message"]
