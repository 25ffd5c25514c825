"""``warden.sdk.approvals.wait_for_approval`` against the in-process API."""

from __future__ import annotations

import pytest

from tests.approvals.conftest import Approvers
from warden.sdk.approvals import ApprovalError, ApprovalTimeoutError, wait_for_approval

pytestmark = pytest.mark.approvals


def _request(aw: Approvers, ticket: str) -> tuple[str, str]:
    aw.agent(name=f"bot-{ticket.lower()}")
    task = aw.start_task(f"bot-{ticket.lower()}", scope="tickets.delete")
    body = aw.call(task, "tickets.delete", arguments={"ticket": ticket})
    return body["context"]["approval_request"]["id"], task["access_token"]


def test_waiting_returns_the_outcome(aw: Approvers) -> None:
    rid, token = _request(aw, "T-1")
    with pytest.raises(ApprovalTimeoutError):
        wait_for_approval(rid, 0.2, base_url="http://testserver", token=token, client=aw.client)
    assert aw.approve(rid).status_code == 200
    outcome = wait_for_approval(rid, 5, base_url="http://testserver", token=token, client=aw.client)
    assert outcome.approved and outcome.status == "approved" and outcome.approved_until

    rid2, token2 = _request(aw, "T-2")
    r = aw.client.post(f"/v1/approvals/{rid2}/deny", json={"reason": "no"}, headers=aw.as_("alice"))
    assert r.status_code == 200
    denied = wait_for_approval(
        rid2, 5, base_url="http://testserver", token=token2, client=aw.client
    )
    assert not denied.approved and denied.reason == "no"


def test_errors_are_clear(aw: Approvers) -> None:
    rid, _ = _request(aw, "T-3")
    with pytest.raises(ApprovalError) as info:
        wait_for_approval("apr_missing", 1, base_url="http://testserver", client=aw.client)
    assert info.value.code == "not_found"
    _, other = _request(aw, "T-4")
    with pytest.raises(ApprovalError) as info:
        wait_for_approval(rid, 1, base_url="http://testserver", token=other, client=aw.client)
    assert info.value.status == 403
    with pytest.raises(ValueError):
        wait_for_approval("../v1/agents", 1)
