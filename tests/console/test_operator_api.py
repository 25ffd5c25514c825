"""The operator's jobs outside the browser, against the same real server: the decision-id
filter and the refusal of unknown filters, the console session's CSRF defences and headers,
``/docs`` offline with its bodies and status codes, the server's per-event log lines, the CLI's
``why`` / ``audit show`` / ``approvals list --watch``, and certification by a linked owner."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from tests.console.conftest import OWNER, POLICIES, Console, start_server
from warden.cli.main import app

pytestmark = [pytest.mark.console, pytest.mark.slow]


def _cli(console: Console, *args: str, token: str | None = None) -> Any:
    env = {"WARDEN_URL": console.url, "WARDEN_TOKEN": token or console.admin}
    return CliRunner().invoke(app, list(args), env=env)


def _denied(console: Console, prefix: str) -> tuple[str, dict[str, Any]]:
    _, spiffe = console.agent(prefix)
    token = console.task(spiffe)
    body = console.call(spiffe, token, "tickets.purge", arguments={"ticket": "T-5"})
    assert body["decision"] is False
    return body["context"]["decision_id"], body


def test_audit_filters_by_decision_id_and_refuses_unknown_filters(console: Console) -> None:
    decision_id, _ = _denied(console, "filtered")
    _denied(console, "other")
    found = console.api("GET", f"/v1/audit?decision_id={decision_id}")["records"]
    assert found and {r["decision_id"] for r in found} == {decision_id}
    headers = {"Authorization": f"Bearer {console.admin}"}
    for query in ("decision_ud=x", "agent=a&colour=blue", "decisionid=x"):
        r = httpx.get(f"{console.url}/v1/audit?{query}", headers=headers)
        assert r.status_code == 400, (query, r.text)
        assert r.json()["error"]["code"] == "invalid_parameter"
        assert "unknown filter" in r.json()["error"]["message"]


def test_why_names_the_policy_its_source_and_the_verified_record(console: Console) -> None:
    decision_id, _ = _denied(console, "why")
    why = console.api("GET", f"/v1/audit/decisions/{decision_id}")
    assert why["decision"] == "deny" and why["reason"] == "forbidden by no-purge"
    [policy] = why["policies"]
    source = (console.policies / "approvals.cedar").read_text().splitlines()
    line = next(i for i, text in enumerate(source, 1) if text == '@id("no-purge")')
    assert (policy["file"], policy["line"], policy["column"]) == ("approvals.cedar", line, 1)
    assert policy["text"].startswith('@id("no-purge")') and policy["text"].endswith(";")
    assert why["request"]["context"]["arguments"] == {"ticket": "T-5"}
    assert why["credential"]["chain"][0].startswith("spiffe://example.org/agent/why-")
    assert why["audit"]["verification"]["record_hash"] is True
    assert why["audit"]["verification"]["links_previous"] is True
    assert why["mode"] == "enforce"

    r = httpx.get(
        f"{console.url}/v1/audit/decisions/dec_nope",
        headers={"Authorization": f"Bearer {console.admin}"},
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = httpx.get(
        f"{console.url}/v1/audit/decisions/{decision_id}",
        headers={"Authorization": f"Bearer {console.approver}"},
    )
    assert r.status_code == 403  # the audit log is for auditors and admins

    out = _cli(console, "why", decision_id)
    assert out.exit_code == 0, out.output
    assert "DENY" in out.stdout and "forbidden by no-purge" in out.stdout
    assert f"approvals.cedar:{line}:1" in out.stdout and "tickets.purge" in out.stdout
    shown = _cli(console, "audit", "show", decision_id)
    assert shown.exit_code == 0 and f"approvals.cedar:{line}:1" in shown.stdout
    assert json.loads(_cli(console, "why", decision_id, "--json").stdout)["decision_id"] == (
        decision_id
    )


def test_console_session_is_csrf_safe_and_pages_have_a_strict_csp(console: Console) -> None:
    url = console.url
    r = httpx.get(f"{url}/console/agents")
    assert r.status_code == 303 and r.headers["location"] == "/console/login"
    # a login from another origin (login CSRF) and a wrong token are refused
    r = httpx.post(f"{url}/console/login", data={"token": console.admin},
                   headers={"Origin": "http://evil.example"})  # fmt: skip
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"
    r = httpx.post(f"{url}/console/login", data={"token": "wdn_op_wrong"},
                   headers={"Origin": url})  # fmt: skip
    assert r.status_code == 401 and "invalid operator token" in r.text
    pep = console.api("POST", "/v1/operators", {"name": "gateway", "role": "pep"})["token"]
    r = httpx.post(f"{url}/console/login", data={"token": pep}, headers={"Origin": url})
    assert r.status_code == 403 and "warden_console" not in r.cookies  # a machine account
    r = httpx.post(f"{url}/console/login", data={"token": console.admin}, headers={"Origin": url})
    assert r.status_code == 303 and r.headers["location"] == "/console/approvals"
    session = r.cookies["warden_console"]
    csrf = r.cookies["warden_csrf"]
    cookie_header = r.headers.get_list("set-cookie")
    session_cookie = next(c for c in cookie_header if c.startswith("warden_console="))
    assert "HttpOnly" in session_cookie and "SameSite=strict" in session_cookie
    assert session not in r.headers["location"]

    jar = {"warden_console": session, "warden_csrf": csrf}
    name, _ = console.agent("csrf")
    suspend = f"{url}/v1/agents/{name}/suspend"
    for headers in (
        {},  # no CSRF token
        {"X-CSRF-Token": "guess", "Origin": url},  # a wrong one
        {"X-CSRF-Token": csrf, "Origin": "http://evil.example"},  # right token, other origin
        {"X-CSRF-Token": csrf},  # no origin at all
    ):
        r = httpx.post(suspend, json={}, cookies=jar, headers=headers)
        assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed", headers
    assert console.api("GET", f"/v1/agents/{name}")["status"] == "active"
    r = httpx.post(suspend, json={}, cookies=jar, headers={"X-CSRF-Token": csrf, "Origin": url})
    assert r.status_code == 200 and r.json()["status"] == "suspended"

    for path in ("/console/approvals", "/console/decisions/dec_x", "/console/login"):
        r = httpx.get(f"{url}{path}", cookies=jar)
        assert r.status_code == 200
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert not re.search(r"<script(?![^>]*\bsrc=)", r.text), "inline script"
        assert not re.search(r"\sstyle=|<style", r.text), "inline style"
        assert not re.search(r"(src|href)=\"(https?:)?//", r.text), "an asset from elsewhere"
    for bad in ("../../config.py", "..%2f__init__.py", "console.py", "x.js"):
        assert httpx.get(f"{url}/console/static/{bad}").status_code == 404
    r = httpx.post(
        f"{url}/console/logout", cookies=jar, headers={"X-CSRF-Token": csrf, "Origin": url}
    )
    assert r.status_code == 200 and 'warden_console=""' in r.headers["set-cookie"]


def test_docs_work_offline_and_document_bodies_and_status_codes(console: Console) -> None:
    page = httpx.get(f"{console.url}/docs")
    assert page.status_code == 200
    for src in re.findall(r'(?:src|href)="([^"]+)"', page.text):
        assert src.startswith("/"), src
        assert httpx.get(f"{console.url}{src}").status_code == 200, src
    spec = httpx.get(f"{console.url}/openapi.json").json()
    register = spec["paths"]["/v1/agents"]["post"]
    assert "201" in register["responses"] and "200" not in register["responses"]
    body = register["requestBody"]["content"]["application/json"]["schema"]
    assert {"name", "owner", "purpose"} <= set(body["required"])
    # the decision answer is documented with its one shape (ADR 0101)
    ok = spec["paths"]["/access/v1/evaluation"]["post"]["responses"]["200"]
    assert ok["content"]["application/json"]["schema"]["$ref"].endswith("/DecisionV1")
    context = spec["components"]["schemas"]["DecisionV1"]["properties"]["context"]
    assert set(context["required"]) == {"decision_id", "reason", "reasons"}
    assert {"allowed", "policy", "out_of_scope"} <= set(context["properties"]["reason"]["examples"])
    writes = [
        (path, method)
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if method in ("post", "put", "patch")
        and path.startswith(("/v1/", "/access/", "/oauth2/"))
        and "requestBody" not in op
    ]
    # the writes that take no body at all
    assert set(writes) <= {
        ("/v1/audit/checkpoints", "post"), ("/v1/policies/reload", "post"),
        ("/v1/keys/rotate", "post"), ("/v1/certifications/{campaign_id}/close", "post"),
        ("/v1/forward-auth", "post"),
    }, writes  # fmt: skip
    assert all(
        "422" not in op["responses"] for ops in spec["paths"].values() for op in ops.values()
    )


def test_the_server_logs_one_structured_line_per_event_without_request_values(
    console: Console,
) -> None:
    decision_id, _ = _denied(console, "logged")
    name, _ = console.agent("killed")
    console.api("POST", f"/v1/agents/{name}/suspend", {"reason": "test"})
    # the writer thread logs each batch just after its commit, so a read that already sees the
    # records may still race the log line: wait for it (bounded), never sleep a fixed time
    deadline = time.monotonic() + 15
    while True:
        lines = [
            json.loads(text)
            for text in console.server.log_file.read_text().splitlines()
            if text.startswith("{")
        ]
        suspended = [x for x in lines if x.get("event") == "agent.suspended"]
        if any(x.get("agent") == name for x in suspended) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    decision = [x for x in lines if x.get("decision_id") == decision_id]
    assert len(decision) == 1, decision
    assert decision[0]["event"] == "authz.decision" and decision[0]["decision"] == "deny"
    assert decision[0]["reasons"] == ["no-purge"] and decision[0]["level"] == "info"
    assert any(x.get("event") == "agent.suspended" and x.get("agent") == name for x in lines)
    log_text = console.server.log_file.read_text()
    assert "T-5" not in log_text  # arguments never reach the log
    assert console.admin not in log_text and console.approver not in log_text


def test_approvals_list_watch_prints_new_requests_as_they_happen(console: Console) -> None:
    name, spiffe = console.agent("watched")
    token = console.task(spiffe)
    command = [sys.executable, "-m", "warden.cli.main", "approvals", "list", "--watch", "--json",
               "--agent", name]  # fmt: skip
    env = {"WARDEN_URL": console.url, "WARDEN_TOKEN": console.approver, "PATH": "/usr/bin:/bin"}
    watcher = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert watcher.stdout is not None
    lines: list[bytes] = []
    stdout = watcher.stdout
    reader = threading.Thread(target=lambda: lines.extend(iter(stdout.readline, b"")))
    reader.start()
    try:
        # the watcher subscribes a moment after it starts: hold calls until it has printed one
        deadline = time.monotonic() + 30
        n = 0

        def pushed() -> bool:
            return any(json.loads(x)["event"] != "listed" for x in lines)

        while not pushed() and time.monotonic() < deadline and watcher.poll() is None:
            n += 1
            console.call(spiffe, token, "tickets.delete", arguments={"ticket": f"W-{n}"})
            time.sleep(0.5)
    finally:
        watcher.terminate()
        watcher.wait(10)
        reader.join(10)
    assert lines, watcher.stderr.read().decode() if watcher.stderr else "no output"
    first = next(e for e in map(json.loads, lines) if e["event"] != "listed")
    assert first["event"] == "approval.requested" and first["agent"] == name
    assert first["action"] == "tickets.delete" and first["status"] == "pending"


def test_certification_accepts_the_owner_through_a_linked_account(console: Console) -> None:
    """The owner check is ``acts_for``, as for approvals: the account's ``--human`` link, not
    its name. An approver linked to someone else is refused; the owner's linked account is not."""
    console.agent("certified")
    campaign = console.api("POST", "/v1/certifications", {})
    review = next(
        r for r in campaign["reviews"] if r["owner"] == OWNER and r["status"] == "pending"
    )
    bob = console.api(
        "POST",
        "/v1/operators",
        {"name": "bob-cert", "role": "approver", "human": "bob@example.com"},
    )["token"]
    refused = httpx.post(
        f"{console.url}/v1/certifications/reviews/{review['id']}/keep",
        json={},
        headers={"Authorization": f"Bearer {bob}"},
    )
    assert refused.status_code == 403, refused.text
    assert OWNER in refused.json()["error"]["message"]
    # `alice` is an approver account linked to the owner with --human: her name differs
    decided = console.api(
        "POST", f"/v1/certifications/reviews/{review['id']}/keep", {}, token=console.approver
    )
    assert decided["status"] == "kept" and decided["decided_by"] == "operator:alice"


def test_cli_wrong_token_says_invalid_not_required(console: Console) -> None:
    out = _cli(console, "agents", "list", token="not-a-token")
    assert out.exit_code != 0 and "invalid operator token" in out.output
    assert "required" not in out.output


def test_ctrl_c_ends_open_event_streams_and_stops_cleanly(tmp_path: Path) -> None:
    server = start_server(tmp_path, POLICIES)
    admin = (server.data_dir / "admin.token").read_text().strip()
    opened = threading.Event()
    ended: list[str] = []

    def follow() -> None:
        headers = {"Authorization": f"Bearer {admin}"}
        with httpx.stream("GET", f"{server.url}/v1/approvals/stream", headers=headers,
                          timeout=httpx.Timeout(5, read=120)) as r:  # fmt: skip
            for line in r.iter_lines():
                if line.startswith("retry:"):
                    opened.set()
        ended.append("closed by the server")

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    try:
        assert opened.wait(30)
    finally:
        code = server.stop()
    reader.join(30)
    assert code == 0 and ended == ["closed by the server"], server.log_tail()
    assert "Warden stopped." in server.log_tail()
