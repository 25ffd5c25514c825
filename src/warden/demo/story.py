"""The demo's story: the shared ``Demo`` state, the core steps and how a run goes.

The story is a list of step functions (``STEPS``); each takes the shared ``Demo`` state,
talks to the server through ``Demo.call`` and raises ``StepError`` when the answer is wrong.
Each feature adds a chapter: a module of this package with its own ``STEPS`` (``attestation``,
``lifecycle``, ``approvals``, ``enforcement``, ``governance``, ``integrity``), which
``all_steps`` puts in order.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.text import Text

from warden.cli.dev import DEV_TRUST_DOMAIN, JWT_TOKEN_TYPE, TOKEN_EXCHANGE, dev_trust_dir
from warden.cli.output import console, when

AGENT = {
    "name": "invoice-bot",
    "owner": "bob@example.com",
    "purpose": "answer customers' invoice questions raised in support tickets",
    "risk_tier": "medium",
    "entitlements": ["tickets.read", "tickets.summarise", "email.send"],
    "groups": ["support"],
}
REQUESTED_SCOPE = "tickets.read email.send payments.refund"
TASK_DETAILS = [
    {
        "type": "agent_task",
        "purpose": "reply to the customer in ticket T-1042 about invoice INV-7731",
        "category": "support",
    }
]


class StepError(Exception):
    """A step's answer was not what Warden promises."""


# -- transcript helpers ---------------------------------------------------------------------------


def _abbrev(value: Any, limit: int = 48) -> Any:
    """Shorten long strings (tokens) for display, recursively."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:20]}…{value[-8:]} ({len(value)} chars)"
    if isinstance(value, dict):
        return {k: _abbrev(v, limit) for k, v in value.items()}
    if isinstance(value, list):
        return [_abbrev(v, limit) for v in value]
    return value


def _compact(value: Any) -> str:
    return json.dumps(_abbrev(value), ensure_ascii=False, separators=(", ", ": "))


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, decoded WITHOUT verification — for display only."""
    try:
        payload = token.split(".")[1]
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        claims = json.loads(raw)
    except (IndexError, ValueError) as exc:
        raise StepError(f"not a JWT: {exc}") from None
    if not isinstance(claims, dict):
        raise StepError("the JWT payload is not a json object")
    return claims


@dataclass
class Demo:
    """State shared by the steps, and the transcript printer."""

    url: str
    data_dir: Path
    http: httpx.Client
    admin_token: str
    agent: dict[str, Any] = field(default_factory=lambda: dict(AGENT))
    spiffe_id: str = ""
    svid: str = ""
    credential: str = ""
    task_id: str = ""
    facts: dict[str, Any] = field(default_factory=dict)

    # printing
    def say(self, text: str) -> None:
        console.print(Text("   " + text))

    def ok(self, text: str) -> None:
        console.print(Text.assemble("   ", ("✔ ", "bold green"), text))

    def check(self, condition: bool, promise: str, actual: Any = None) -> None:
        """✔ ``promise`` when ``condition`` holds, else fail the step naming what came back."""
        if condition:
            self.ok(promise)
            return
        shown = "" if actual is None else f" — got {_compact(actual)}"
        raise StepError(f"expected: {promise}{shown}")

    # talking to the server
    def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        form: dict[str, str] | None = None,
        bearer: str | None = None,
        admin: bool = False,
        params: dict[str, Any] | None = None,
        show: tuple[str, ...] | None = None,
        headers: dict[str, str] | None = None,
        as_who: str | None = None,
    ) -> tuple[int, Any]:
        """Send one request and print it; ``show`` limits the response keys printed.

        ``as_who`` names the bearer in the transcript (default: a task credential).
        """
        headers = dict(headers or {})
        token = self.admin_token if admin else bearer
        if token:
            headers["Authorization"] = f"Bearer {token}"
        auth = (
            " (admin token)" if admin else (f" ({as_who or 'task credential'})" if bearer else "")
        )
        query = ("?" + "&".join(f"{k}={v}" for k, v in params.items())) if params else ""
        console.print(Text.assemble("   → ", (f"{method} {path}{query}", "bold"), auth))
        sent = json_body if json_body is not None else form
        if sent is not None:
            console.print(Text(f"     {_compact(sent)}", style="dim"))
        try:
            response = self.http.request(
                method, path, json=json_body, data=form, headers=headers, params=params
            )
        except httpx.HTTPError as exc:
            raise StepError(f"{method} {path} failed: {exc}") from None
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = response.text
        console.print(Text.assemble("   ← ", (str(response.status_code), "bold")))
        shown = body
        if show is not None and isinstance(body, dict) and response.status_code < 400:
            shown = {k: body[k] for k in show if k in body} if show else None
        if shown is not None:
            console.print(Text(f"     {_compact(shown)}", style="dim"))
        return response.status_code, body

    def evaluate(self, tool: str, arguments: dict[str, Any], token: str) -> dict[str, Any]:
        """An AuthZEN evaluation in the COAZ-MCP shape for one tool call."""
        request = {
            "subject": {"type": "agent", "id": self.spiffe_id, "properties": {"token": token}},
            "action": {"name": "tools/call"},
            "resource": {"type": "tool", "id": tool},
            "context": {"arguments": arguments},
        }
        status, body = self.call("POST", "/access/v1/evaluation", json_body=request)
        if status != 200 or not isinstance(body, dict) or "decision" not in body:
            raise StepError(f"the PDP did not answer: HTTP {status} {_compact(body)}")
        return body


# -- the steps ------------------------------------------------------------------------------------


def register_agent(d: Demo) -> None:
    status, body = d.call(
        "POST",
        "/v1/agents",
        json_body=d.agent,
        admin=True,
        show=("name", "status", "spiffe_id", "owner", "risk_tier", "entitlements", "groups"),
    )
    d.check(status == 201, "201 Created", status)
    d.spiffe_id = body["spiffe_id"]
    d.check(body.get("status") == "active", "the agent is active", body.get("status"))
    d.ok(
        f"{body['name']} is {d.spiffe_id}, owned by {body['owner']}, "
        f"entitled to {' '.join(body['entitlements'])}"
    )


def mint_svid(d: Demo) -> None:
    from warden.tokens.svid import DevTrustDomain

    directory = dev_trust_dir(d.data_dir)
    domain = DevTrustDomain.load(DEV_TRUST_DOMAIN, directory)
    d.say(f"signing with the dev trust domain `{domain.trust_domain}` ({directory})")
    d.svid = domain.mint(d.spiffe_id, "warden", ttl=300)
    claims = jwt_claims(d.svid)
    d.say(f"JWT-SVID claims: {_compact(claims)}")
    d.check(claims.get("sub") == d.spiffe_id, "the SVID names the agent's SPIFFE ID", claims)


def exchange_token(d: Demo) -> None:
    form = {
        "grant_type": TOKEN_EXCHANGE,
        "subject_token": d.svid,
        "subject_token_type": JWT_TOKEN_TYPE,
        "scope": REQUESTED_SCOPE,
        "authorization_details": json.dumps(TASK_DETAILS),
    }
    status, body = d.call(
        "POST",
        "/oauth2/token",
        form=form,
        show=("access_token", "token_type", "expires_in", "scope", "task_id", "task_expires_at"),
    )
    d.check(status == 200, "200 OK: a task credential", body)
    d.credential = body["access_token"]
    d.task_id = body["task_id"]
    granted = set(str(body.get("scope", "")).split())
    d.check(
        granted == {"tickets.read", "email.send"},
        "granted scope = requested ∩ entitlements: tickets.read email.send "
        "(payments.refund is not an entitlement, so it is dropped)",
        body.get("scope"),
    )
    claims = jwt_claims(d.credential)
    d.say(
        f"task {d.task_id}: credential expires in {body.get('expires_in')} s "
        f"(at {when(claims.get('exp'))}), the task at {when(body.get('task_expires_at'))}"
    )
    d.say(
        "credential claims: "
        + _compact({k: claims.get(k) for k in ("sub", "aud", "task", "scope", "exp", "jti")})
    )
    d.check(claims.get("task") == d.task_id, "the credential is bound to this task", claims)


def allowed_call(d: Demo) -> None:
    body = d.evaluate("tickets.read", {"ticket": "T-1042"}, d.credential)
    reasons = (body.get("context") or {}).get("reasons", [])
    d.check(body["decision"] is True, "decision true: reading the ticket is allowed", body)
    d.say(f"allowed by {', '.join(reasons) or '(no policy ids returned)'}")


def out_of_scope_call(d: Demo) -> None:
    body = d.evaluate("payments.refund", {"invoice": "INV-7731", "amount": 120}, d.credential)
    reason = (body.get("context") or {}).get("reason")
    d.check(
        body["decision"] is False and reason == "out_of_scope",
        "decision false, reason out_of_scope: the tool is not in the task's scope",
        body,
    )


def forbidden_call(d: Demo) -> None:
    inside = d.evaluate(
        "email.send",
        {"to": "carol@example.com", "subject": "INV-7731", "body": "Here is your invoice."},
        d.credential,
    )
    d.check(inside["decision"] is True, "decision true: email to an example.com address", inside)
    body = d.evaluate(
        "email.send",
        {"to": "someone@elsewhere.test", "subject": "INV-7731", "body": "Invoice attached."},
        d.credential,
    )
    reasons = (body.get("context") or {}).get("reasons", [])
    d.check(
        body["decision"] is False and "no-external-email" in reasons,
        "decision false: email outside example.com is forbidden by policy `no-external-email`",
        body,
    )


def complete_task(d: Demo) -> None:
    status, body = d.call(
        "POST",
        f"/v1/tasks/{d.task_id}/complete",
        json_body={},
        bearer=d.credential,
        show=("id", "agent", "status", "granted_scope", "ended_at"),
    )
    d.check(
        status == 200 and body.get("status") == "completed",
        "the agent completed its own task with its task credential",
        body,
    )


def revoked_retry(d: Demo) -> None:
    body = d.evaluate("tickets.read", {"ticket": "T-1042"}, d.credential)
    reason = (body.get("context") or {}).get("reason")
    d.check(
        body["decision"] is False and reason == "invalid_credential",
        "decision false, reason invalid_credential: the credential died with its task",
        body,
    )


def verify_audit(d: Demo) -> None:
    status, body = d.call("GET", "/v1/audit/verify", admin=True)
    d.check(status == 200 and body.get("ok") is True, "the audit hash chain verifies", body)
    status, page = d.call("GET", "/v1/audit", admin=True, params={"limit": 1000}, show=("next",))
    if status != 200:
        raise StepError(f"could not list the audit log: HTTP {status}")
    types = Counter(r["type"] for r in page.get("records", []))
    shown = ", ".join(f"{t} x{n}" for t, n in sorted(types.items()))
    d.say(f"{body['records']} records, head {str(body.get('head_hash'))[:16]}…")
    d.say(f"record types: {shown}")
    wanted = [
        "agent.registered",
        "task.started",
        "credential.issued",
        "authz.decision",
        "task.completed",
        "credential.revoked",
    ]
    missing = [t for t in wanted if t not in types]
    d.check(not missing, "every step left its record: " + ", ".join(wanted), missing or None)
    d.check(
        types["authz.decision"] >= 5,
        "every decision was recorded (5 so far)",
        types["authz.decision"],
    )


Step = tuple[str, Callable[[Demo], None]]

STEPS: list[Step] = [
    ("Register an agent with an accountable owner", register_agent),
    ("The agent's workload identity: a JWT-SVID from the demo trust domain", mint_svid),
    ("Start a task: exchange the SVID for a task credential (RFC 8693)", exchange_token),
    ("An allowed call (AuthZEN evaluation)", allowed_call),
    ("A call outside the task's scope", out_of_scope_call),
    ("A call forbidden by policy", forbidden_call),
    ("Finish: the agent completes its task", complete_task),
    ("Retry the allowed call with the old credential", revoked_retry),
]

# The story ends by proving the record of everything before it.
FINAL_STEPS: list[Step] = [("Verify the tamper-evident audit trail", verify_audit)]


def all_steps() -> list[Step]:
    """Core steps, then each feature's chapter (the modules of this package with ``STEPS``)."""
    from warden.demo import approvals, attestation, enforcement, governance, integrity, lifecycle

    chapters: list[list[Step]] = [
        attestation.STEPS,
        lifecycle.STEPS,
        approvals.STEPS,
        enforcement.STEPS,  # its MCP call held for approval is approved by the owner above
        governance.STEPS,
        integrity.STEPS,
    ]
    # the story ends with the evidence: the controls report over everything above
    return [
        *STEPS,
        *(step for chapter in chapters for step in chapter),
        *FINAL_STEPS,
        *governance.CLOSING,
    ]


def run_steps(d: Demo, steps: list[Step]) -> bool:
    for number, (title, step) in enumerate(steps, 1):
        console.print()
        console.print(Text(f"{number}. {title}", style="bold cyan"))
        try:
            step(d)
        except StepError as exc:
            console.print(Text.assemble("   ", ("✘ ", "bold red"), str(exc)))
            console.print()
            console.print(Text(f"✘ step {number} failed: {title}", style="bold red"))
            return False
        except Exception as exc:  # a crash in a step is a failed demo, not a traceback
            console.print(Text.assemble("   ", ("✘ ", "bold red"), f"{type(exc).__name__}: {exc}"))
            console.print()
            console.print(Text(f"✘ step {number} failed: {title}", style="bold red"))
            return False
    console.print()
    console.print(Text(f"✔ all {len(steps)} steps behaved as expected", style="bold green"))
    return True
