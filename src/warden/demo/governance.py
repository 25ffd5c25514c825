"""Demo chapter: governance and evidence.

Owners change (a co-owner takes over; an orphan is re-owned), a certification campaign opens a
review per agent with what each actually used, the task's story is reconstructed from the log,
a checkpoint is signed and checked against the public JWKS, the log is exported as OCSF — and
the demo ends (``CLOSING``) with the controls report over everything the story did.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

from warden.demo.story import Demo, Step, StepError

CO_OWNER = "carol@example.com"
SECOND_AGENT = {
    "name": "report-bot",
    "owner": "dave@example.com",
    "purpose": "summarise the week's support tickets for the team lead",
    "risk_tier": "low",
    "entitlements": ["tickets.read", "tickets.summarise"],
}


def owners_change(d: Demo) -> None:
    owner = d.agent["owner"]
    status, _ = d.call("POST", "/v1/owners", json_body={"id": CO_OWNER}, admin=True)
    d.check(status == 201, f"{CO_OWNER} is a known, active owner", status)
    name = d.agent["name"]
    status, body = d.call(
        "POST",
        f"/v1/agents/{name}/owners",
        json_body={"owners": [owner, CO_OWNER], "reason": "backup owner"},
        admin=True,
        show=("owners",),
    )
    d.check(status == 200, f"{name} has a primary owner and a co-owner", body)
    status, body = d.call(
        "POST",
        f"/v1/owners/{owner}/deactivate",
        json_body={"reason": "left the company"},
        admin=True,
    )
    d.check(
        status == 200 and body.get("promoted") == [name],
        f"{owner} left: the co-owner {CO_OWNER} becomes the accountable owner of {name}",
        body,
    )
    status, body = d.call("POST", "/v1/agents", json_body=SECOND_AGENT, admin=True, show=())
    d.check(status == 201, "a second agent, report-bot, owned by dave", status)
    status, body = d.call(
        "POST", f"/v1/owners/{SECOND_AGENT['owner']}/deactivate", json_body={}, admin=True
    )
    d.check(
        body.get("orphaned") == ["report-bot"],
        "dave left with no co-owner: report-bot is orphaned (suspended in 24 h unless re-owned)",
        body,
    )
    status, body = d.call(
        "POST",
        "/v1/agents/report-bot/owners",
        json_body={"owners": [CO_OWNER]},
        admin=True,
        show=("owners", "orphaned_at"),
    )
    d.check(
        body.get("orphaned_at") is None, f"re-owned by {CO_OWNER} within the grace period", body
    )
    status, body = d.call(
        "POST",
        "/v1/agents/report-bot/owners",
        json_body={"owners": ["nobody@example.com"]},
        admin=True,
    )
    d.check(status == 404, "an owner who does not exist is refused (404)", status)


def certification(d: Demo) -> None:
    status, body = d.call(
        "POST",
        "/v1/certifications",
        json_body={"every": "90d", "window": "14d"},
        admin=True,
        show=("id", "every", "deadline", "on_timeout"),
    )
    d.check(status == 201, "a campaign opens, to repeat every 90 days", body)
    reviews = {r["agent"]: r for r in body["reviews"]}
    mine = reviews.get(d.agent["name"])
    if mine is None:
        raise StepError(f"no review for {d.agent['name']}: {json.dumps(body)[:300]}")
    d.say(
        f"{mine['agent']}: entitled to {' '.join(mine['entitlements'])}; "
        f"used {' '.join(mine['used']) or 'nothing'} — review for {mine['owner']}"
    )
    status, _ = d.call("POST", "/v1/certifications", json_body={}, admin=True)
    d.check(status == 409, "a second campaign while one is open is refused (409)", status)
    status, body = d.call(
        "POST",
        f"/v1/certifications/reviews/{mine['id']}/reduce",
        admin=True,
        show=("status", "result"),
    )
    d.check(
        status == 200 and body.get("result") == mine["used"],
        "one request: reduce to what was actually used",
        body,
    )
    other = reviews.get("report-bot")
    if other is not None:
        status, body = d.call(
            "POST",
            f"/v1/certifications/reviews/{other['id']}/revoke",
            admin=True,
            show=("status", "result"),
        )
        d.check(
            body.get("status") == "revoked",
            "report-bot is no longer needed: revoked, and the agent suspended at once",
            body,
        )
    d.say("reviews left unanswered at the deadline are reduced to what was used (or suspended)")


def attribution(d: Demo) -> None:
    status, story = d.call("GET", f"/v1/audit/tasks/{d.task_id}/story", admin=True, show=())
    d.check(status == 200, "the task's story, reconstructed from the audit log", status)
    sections = {
        k: len(v) for k, v in story.items() if isinstance(v, list) and k != "subtasks" and v
    }
    d.say(
        f"attested by {story['attestation'].get('method')}, owner {story['agent_owner']}: "
        + ", ".join(f"{k} {n}" for k, n in sections.items())
    )
    status, page = d.call(
        "GET",
        "/v1/audit",
        admin=True,
        show=(),
        params={"tool": "email.send", "decision": "deny", "task": d.task_id},
    )
    records = page.get("records", [])
    d.check(
        len(records) == 1 and records[0]["data"].get("reasons") == ["no-external-email"],
        "who tried to email outside, and which policy stopped it: no-external-email",
        records,
    )


def checkpoint(d: Demo) -> None:
    from warden.tokens.checkpoint import verify_checkpoint

    status, body = d.call("POST", "/v1/audit/checkpoints", admin=True, show=("created",))
    cp = (body or {}).get("checkpoint") or {}
    d.check(
        status in (200, 201) and bool(cp.get("seq")), "a signed checkpoint of the audit chain", body
    )
    status, jwks = d.call("GET", "/.well-known/jwks.json", show=())
    claims = verify_checkpoint(cp["jws"], jwks)
    d.check(
        claims["seq"] == cp["seq"] and claims["head"] == cp["head_hash"],
        f"anyone with the public JWKS can check it: {cp['seq']} records, head "
        f"{cp['head_hash'][:16]}…",
        claims,
    )


def ocsf_export(d: Demo) -> None:
    d.say("→ GET /v1/audit/export?format=ocsf (admin token)")
    response = d.http.get(
        "/v1/audit/export",
        params={"format": "ocsf"},
        headers={"Authorization": f"Bearer {d.admin_token}"},
    )
    if response.status_code != 200:
        raise StepError(f"export failed: HTTP {response.status_code}")
    events = [json.loads(line) for line in response.text.splitlines()]
    classes = Counter(f"{e['class_uid']} {e['class_name']}" for e in events)
    d.say("OCSF 1.8.0 classes: " + ", ".join(f"{k} x{n}" for k, n in sorted(classes.items())))
    decision = next((e for e in events if e["class_uid"] == 6003 and e.get("action_id")), None)
    d.check(
        decision is not None and decision["type_uid"] == 600399,
        "decisions are API Activity (6003) with the security_control verdict",
        decision and {k: decision.get(k) for k in ("class_uid", "type_uid", "disposition_id")},
    )


def controls_report(d: Demo) -> None:
    d.call("POST", "/v1/audit/checkpoints", admin=True, show=())  # anchor the story's tail
    # the period: the minutes this demo ran (charts bucket it into 48 slices)
    params: dict[str, Any] = {"from": time.time() - 90, "to": time.time() + 5}
    status, report = d.call(
        "GET", "/v1/reports/controls", admin=True, params={**params, "format": "json"}, show=()
    )
    if status != 200:
        raise StepError(f"the report failed: HTTP {status}")
    integrity = report["integrity"]
    d.check(integrity["ok"], integrity["statement"], integrity)
    counts = report["summary"]["controls"]
    d.say(
        f"{report['summary']['records_in_period']} records, 25 controls: {counts['pass']} pass, "
        f"{counts['fail']} fail, {counts['no_data']} no data in this period, "
        f"{counts['not_evaluable']} not evaluable from Warden's records"
    )
    for c in report["controls"]:
        mark = {"pass": "✔", "fail": "✘", "no_data": "·", "not_evaluable": "-"}[c["status"]]
        extra = f" — violating records {c['violating_seqs'][:5]}" if c["violations"] else ""
        asi = ",".join(c["maps_to"]["owasp_asi"])
        d.say(f"{mark} {c['id']:<12} {c['title']:<44} {asi}{extra}")
    partial = ", ".join(sorted(report["partial"]))
    d.say(f"only partly addressed by a control plane (said so in the report): {partial}")
    html = d.http.get(
        "/v1/reports/controls",
        params={**params, "format": "html"},
        headers={"Authorization": f"Bearer {d.admin_token}"},
    )
    path = d.data_dir / "controls-report.html"
    path.write_text(html.text)
    d.check(
        html.status_code == 200 and html.text.count("<svg") == 3,
        f"one self-contained HTML file with charts: {path} (kept with --keep)",
        html.status_code,
    )


STEPS: list[Step] = [
    ("Owners: a co-owner takes over, an orphan is re-owned", owners_change),
    ("Certification: review entitlements against actual use", certification),
    ("Attribution: the task's story, and who was stopped by which policy", attribution),
    ("Tamper evidence: a signed checkpoint, checked with the public JWKS", checkpoint),
    ("Export: the audit log as OCSF 1.8.0 events", ocsf_export),
]

CLOSING: list[Step] = [("Evidence: the controls report over the whole story", controls_report)]
