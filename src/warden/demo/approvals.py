"""The demo's approval chapter: a destructive call held for its owner, approved once.

A new agent, ``cleanup-bot`` (owned by bob@example.com, like the agent of the core story),
may delete tickets — but the packaged policy ``deletes-need-owner-approval`` wants a human
decision on each deletion. The chapter shows the request, who may decide it, the owner
approving exactly that call with their own operator account, the retry passing once, and
everything else (a second retry, another ticket, the agent itself approving) being refused.
"""

from __future__ import annotations

import json
import time
from typing import Any

from warden.cli.dev import DEV_TRUST_DOMAIN, JWT_TOKEN_TYPE, TOKEN_EXCHANGE, dev_trust_dir
from warden.demo.story import Demo, Step, StepError, jwt_claims

AGENT = {
    "name": "cleanup-bot",
    "owner": "bob@example.com",
    "purpose": "close and delete duplicate support tickets",
    "risk_tier": "medium",
    "entitlements": ["tickets.read", "tickets.delete"],
    "groups": ["support"],
}
DELETE = {"ticket": "T-1043", "reason": "duplicate of T-1042"}


def _state(d: Demo) -> dict[str, Any]:
    state: dict[str, Any] = d.facts.setdefault("approvals", {})
    return state


def _evaluate(d: Demo, arguments: dict[str, Any]) -> dict[str, Any]:
    s = _state(d)
    request = {
        "subject": {"type": "agent", "id": s["spiffe_id"], "properties": {"token": s["token"]}},
        "action": {"name": "tools/call"},
        "resource": {"type": "tool", "id": "tickets.delete"},
        "context": {"arguments": arguments},
    }
    status, body = d.call("POST", "/access/v1/evaluation", json_body=request)
    if status != 200 or not isinstance(body, dict):
        raise StepError(f"the PDP did not answer: HTTP {status}")
    return body


def owner_account(d: Demo) -> None:
    from warden.tokens.svid import DevTrustDomain

    s = _state(d)
    status, agent = d.call(
        "POST", "/v1/agents", json_body=AGENT, admin=True, show=("name", "owner", "entitlements")
    )
    d.check(status == 201, "cleanup-bot is registered, owned by bob@example.com", agent)
    s["spiffe_id"] = agent["spiffe_id"]
    status, op = d.call(
        "POST",
        "/v1/operators",
        json_body={"name": "bob", "role": "approver", "human": "bob@example.com"},
        admin=True,
        show=("id", "name", "role", "human"),
    )
    d.check(
        status == 201 and op.get("human") == "bob@example.com",
        "bob gets an approver account linked to him: that is how an owner approves",
        op,
    )
    s["owner_token"] = op["token"]
    domain = DevTrustDomain.load(DEV_TRUST_DOMAIN, dev_trust_dir(d.data_dir))
    form = {
        "grant_type": TOKEN_EXCHANGE,
        "subject_token": domain.mint(s["spiffe_id"], "warden", ttl=300),
        "subject_token_type": JWT_TOKEN_TYPE,
        "scope": "tickets.read tickets.delete",
        "authorization_details": json.dumps(
            [{"type": "agent_task", "purpose": "delete duplicate T-1043", "category": "support"}]
        ),
    }
    status, body = d.call("POST", "/oauth2/token", form=form, show=("task_id", "scope"))
    d.check(status == 200, "cleanup-bot starts a task with tickets.delete in scope", body)
    s["token"] = body["access_token"]
    s["task_id"] = jwt_claims(s["token"]).get("task")


def held_for_approval(d: Demo) -> None:
    s = _state(d)
    body = _evaluate(d, DELETE)
    ctx = body.get("context") or {}
    d.check(
        body["decision"] is False and ctx.get("reason") == "approval_required",
        "decision false, reason approval_required: policy `deletes-need-owner-approval`",
        body,
    )
    request = ctx["approval_request"]
    s["request_id"] = request["id"]
    d.say(f"approval request {request['id']}: approvers {' then '.join(request['approvers'])}")
    d.say(f"the agent (or its PEP) waits on {request['wait_endpoint']}")


def agent_cannot_approve(d: Demo) -> None:
    s = _state(d)
    status, body = d.call(
        "POST",
        f"/v1/approvals/{s['request_id']}/approve",
        json_body={},
        bearer=s["token"],
    )
    code = (body or {}).get("error", {}).get("code") if isinstance(body, dict) else None
    d.check(
        status == 403 and code == "agent_cannot_approve",
        "403 agent_cannot_approve: an agent never approves, not even its own request",
        body,
    )


def owner_approves(d: Demo) -> None:
    s = _state(d)
    status, shown = d.call(
        "GET",
        f"/v1/approvals/{s['request_id']}",
        bearer=s["owner_token"],
        as_who="bob's operator token",
        show=("agent", "action", "resource", "arguments", "awaiting", "digest"),
    )
    d.check(
        status == 200 and shown.get("arguments") == DELETE,
        "bob sees exactly what he is asked to approve",
        shown,
    )
    status, decided = d.call(
        "POST",
        f"/v1/approvals/{s['request_id']}/approve",
        json_body={"reason": "confirmed duplicate", "digest": shown["digest"]},
        bearer=s["owner_token"],
        as_who="bob's operator token",
        show=("status", "decided_by", "decision_auth", "grant_expires_at"),
    )
    d.check(
        status == 200 and decided.get("status") == "approved",
        "approved by bob@example.com with his operator token: a one-time grant",
        decided,
    )


def retry_passes_once(d: Demo) -> None:
    s = _state(d)
    body = _evaluate(d, DELETE)
    d.check(body["decision"] is True, "the retry of the same call is allowed", body)
    again = _evaluate(d, DELETE)
    ctx = again.get("context") or {}
    d.check(
        again["decision"] is False
        and ctx.get("reason") == "approval_required"
        and ctx["approval_request"]["id"] != s["request_id"],
        "a second retry is held again: the grant was for one call",
        again,
    )
    other = _evaluate(d, {"ticket": "T-9999", "reason": "duplicate"})
    d.check(
        other["decision"] is False, "another ticket is not covered by bob's approval either", other
    )
    wanted = ["approval.requested", "approval.refused", "approval.approved", "approval.used"]
    types: list[str] = []
    for _ in range(30):  # the audit writer commits in the background, within milliseconds
        _, page = d.call(
            "GET", "/v1/audit", admin=True, params={"type": "approval.", "limit": 50}, show=()
        )
        types = [r["type"] for r in (page or {}).get("records", [])]
        if types[:4] == wanted:
            break
        time.sleep(0.1)
    d.check(
        types[:4] == wanted,
        "the audit log has the request, the refusal, the approval and its use",
        types,
    )


STEPS: list[Step] = [
    ("Step-up: an agent that deletes tickets, and its owner's approver account", owner_account),
    ("A destructive call is held for the owner's approval", held_for_approval),
    ("The agent tries to approve its own request", agent_cannot_approve),
    ("The owner approves exactly that call", owner_approves),
    ("The retry passes — once", retry_passes_once),
]
