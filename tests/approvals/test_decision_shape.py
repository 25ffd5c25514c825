"""One shape for every decision (ADR 0101): ``context.decision_id``, ``context.reason`` (a stable
code) and ``context.reasons`` (the determining policy ids, ``[]`` when no policy ran) — on allows,
policy denies, each refusal before Cedar, every step-up outcome and monitor mode. The decision
page (``GET /v1/audit/decisions/{id}``) gives the same code from the audit record."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.approvals.conftest import Approvers, make_world
from tests.lifecycle.dpop import ProofKey
from warden.approvals import ApprovalSettings
from warden.core.reasons import CODES, REFUSALS

pytestmark = pytest.mark.approvals

SCOPE = "tickets.read tickets.delete tickets.purge http.get"


@pytest.fixture
def sw(tmp_path: Path) -> Iterator[Approvers]:
    approvals = ApprovalSettings(
        groups={"security": frozenset({"carol@example.com"})},
        deny_cooldown=60,
        max_pending_per_agent=2,
    )
    yield from make_world(tmp_path, approvals=approvals)


def shape(sw: Approvers, body: dict[str, Any]) -> dict[str, Any]:
    """Assert the shape every decision has; the context, for the case's own checks."""
    ctx = body["context"]
    assert isinstance(ctx["decision_id"], str) and ctx["decision_id"].startswith("dec_")
    assert ctx["reason"] in CODES, ctx
    assert isinstance(ctx["reasons"], list) and all(isinstance(p, str) for p in ctx["reasons"])
    assert (ctx["reason"] == "allowed") is (body["decision"] is True), ctx
    if ctx["reason"] in REFUSALS:
        assert ctx["reasons"] == [], ctx  # no policy ran
    sw.warden.writer.flush()
    why = sw.client.get(f"/v1/audit/decisions/{ctx['decision_id']}", headers=sw.admin).json()
    assert why["reason_code"] == ctx["reason"], why  # the record says what the PEP was told
    return dict(ctx)


def _request(
    subject: dict[str, Any], tool: str, action: str = "tools/call", **context: Any
) -> dict[str, Any]:
    return {
        "subject": subject,
        "action": {"name": action},
        "resource": {"type": "tool", "id": tool},
        "context": context,
    }


def _agent(task: dict[str, Any]) -> dict[str, Any]:
    return {"type": "agent", "id": task["spiffe_id"], "properties": {"token": task["access_token"]}}


def _evaluate(sw: Approvers, request: dict[str, Any]) -> Any:
    return sw.client.post("/access/v1/evaluation", json=request).json()


class TestEveryDecisionHasOneShape:
    def test_allow_names_its_permits(self, sw: Approvers) -> None:
        sw.agent()
        task = sw.start_task(scope=SCOPE)
        ctx = shape(sw, sw.call(task, "tickets.read"))
        assert ctx["reason"] == "allowed" and ctx["reasons"] == ["support-read"]

    def test_policy_deny_names_its_forbids(self, sw: Approvers) -> None:
        sw.agent()
        task = sw.start_task(scope=SCOPE)
        ctx = shape(sw, sw.call(task, "tickets.purge", arguments={"ticket": "T-1"}))
        assert ctx["reason"] == "policy" and ctx["reasons"] == ["no-purge"]

    def test_default_deny_is_policy_with_no_ids(self, sw: Approvers) -> None:
        sw.agent("outsider", groups=[])  # no permit names it
        task = sw.start_task("outsider", scope="tickets.read")
        ctx = shape(sw, sw.call(task, "tickets.read"))
        assert ctx["reason"] == "policy" and ctx["reasons"] == []

    def test_refusals_before_policy(self, sw: Approvers) -> None:
        agent = sw.agent()
        task = sw.start_task(scope="tickets.read")
        sid = agent["spiffe_id"]
        cases = {
            "out_of_scope": sw.call(task, "tickets.purge"),
            "missing_credential": _evaluate(
                sw, _request({"type": "agent", "id": sid}, "tickets.read")
            ),
            "invalid_credential": sw.decide("not.a.token", sid, "tickets.read"),
            # the action and the tool resource name different tools
            "tool_mismatch": _evaluate(sw, _request(_agent(task), "tickets.purge", "tickets.read")),
        }
        for code, body in cases.items():
            assert body["decision"] is False, code
            assert shape(sw, body)["reason"] == code

    def test_a_dpop_refusal(self, sw: Approvers) -> None:
        agent = sw.agent()
        key = ProofKey()
        form = {
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": sw.trust.mint(agent["spiffe_id"], "warden", now=sw.clock.now()),
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "scope": "tickets.read",
            "authorization_details": json.dumps(
                [{"type": "agent_task", "purpose": "triage", "category": "support"}]
            ),
        }
        proof = key.proof("POST", f"{sw.warden.settings.effective_issuer}/oauth2/token")
        r = sw.client.post("/oauth2/token", data=form, headers={"DPoP": proof})
        assert r.status_code == 200 and r.json()["token_type"] == "DPoP", r.text
        bound = {**r.json(), "spiffe_id": agent["spiffe_id"]}
        ctx = shape(sw, sw.call(bound, "tickets.read"))  # no proof with the request
        assert ctx["reason"] == "invalid_dpop_proof"

    def test_a_budget_refusal(self, sw: Approvers) -> None:
        sw.agent(baseline={"budgets": {"tools": {"http.get": {"calls": 1}}}})
        task = sw.start_task(scope=SCOPE)
        get = {"destination": "api.example.com", "arguments": {"url": "https://api.example.com"}}
        assert shape(sw, sw.call(task, "http.get", **get))["reason"] == "allowed"
        assert shape(sw, sw.call(task, "http.get", **get))["reason"] == "budget_exceeded"

    def test_approval_required_then_allowed_once_then_required_again(self, sw: Approvers) -> None:
        sw.agent()
        task = sw.start_task(scope=SCOPE)
        args = {"arguments": {"ticket": "T-1"}}
        held = shape(sw, sw.call(task, "tickets.delete", **args))
        assert held["reason"] == "approval_required" and held["reasons"] == ["delete-needs-owner"]
        rid = held["approval_request"]["id"]
        listed = shape(sw, sw.call(task, "tickets.delete", listing=True))
        assert listed["reason"] == "approval_required" and "approval_request" not in listed
        assert sw.approve(rid).status_code == 200
        granted = shape(sw, sw.call(task, "tickets.delete", **args))
        assert granted["reason"] == "allowed"
        assert granted["approval"] == {"granted": True, "request_id": rid}
        again = shape(sw, sw.call(task, "tickets.delete", **args))
        assert again["reason"] == "approval_required"
        assert again["approval_request"]["id"] != rid

    def test_approval_denied_and_rate_limited(self, sw: Approvers) -> None:
        sw.agent()
        task = sw.start_task(scope=SCOPE)
        first = shape(sw, sw.call(task, "tickets.delete", arguments={"ticket": "T-1"}))
        rid = first["approval_request"]["id"]
        r = sw.client.post(
            f"/v1/approvals/{rid}/deny", json={"reason": "no"}, headers=sw.as_("alice")
        )
        assert r.status_code == 200, r.text
        denied = shape(sw, sw.call(task, "tickets.delete", arguments={"ticket": "T-1"}))
        assert denied["reason"] == "approval_denied"
        assert denied["reasons"] == ["delete-needs-owner"]
        for ticket in ("T-2", "T-3"):  # two pending: the cap
            held = sw.call(task, "tickets.delete", arguments={"ticket": ticket})
            assert shape(sw, held)["reason"] == "approval_required"
        capped = shape(sw, sw.call(task, "tickets.delete", arguments={"ticket": "T-4"}))
        assert capped["reason"] == "approval_rate_limited"

    def test_monitor_mode_allows_and_says_what_enforcement_would_answer(
        self, sw: Approvers
    ) -> None:
        sw.agent()
        task = sw.start_task(scope=SCOPE)
        r = sw.client.put(
            "/v1/policies/modes",
            json={"kind": "agent", "value": "support-bot", "mode": "monitor"},
            headers=sw.admin,
        )
        assert r.status_code == 200, r.text
        purge = shape(sw, sw.call(task, "tickets.purge", arguments={"ticket": "T-1"}))
        assert purge["reason"] == "allowed" and purge["reasons"] == ["no-purge"]
        assert purge["monitor"]["would_deny"] is True and purge["monitor"]["reason"] == "policy"
        delete = shape(sw, sw.call(task, "tickets.delete", arguments={"ticket": "T-1"}))
        assert delete["reason"] == "allowed"
        assert delete["monitor"]["reason"] == "approval_required"
        assert delete["monitor"]["would_require_approval"] is True
        sw.warden.writer.flush()
        why = sw.client.get(f"/v1/audit/decisions/{delete['decision_id']}", headers=sw.admin)
        assert why.json()["monitor"]["reason"] == "approval_required"

    def test_a_malformed_batch_item_has_the_shape_with_no_decision_id(self, sw: Approvers) -> None:
        sw.agent()
        task = sw.start_task(scope=SCOPE)
        good = _request(_agent(task), "tickets.read")
        r = sw.client.post("/access/v1/evaluations", json={"evaluations": [good, {"x": 1}]})
        assert r.status_code == 200, r.text
        ok, bad = r.json()["evaluations"]
        assert shape(sw, ok)["reason"] == "allowed"
        assert bad["decision"] is False
        assert {k: bad["context"][k] for k in ("decision_id", "reason", "reasons")} == {
            "decision_id": None,
            "reason": "invalid_request",
            "reasons": [],
        }
        assert bad["context"]["error"]["status"] == 400
