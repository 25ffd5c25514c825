"""The operator console in a real Chromium: the operator's daily jobs, end to end.

Each test drives the pages a person would use against a real ``warden serve`` and checks what
the agent sees afterwards. Every request the browser makes is routed through a guard that
aborts anything not addressed to 127.0.0.1 (the console must work with no network).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.console.conftest import Console, Guard, sign_in

pytestmark = [pytest.mark.console, pytest.mark.slow]

PAGES = ("approvals", "agents", "decisions", "tasks", "certification", "policies", "evidence")
SCREENSHOTS = ("approvals", "agents", "decisions")


def test_held_call_appears_live_and_is_approved_in_the_page(
    console: Console, browser: tuple[Any, Guard]
) -> None:
    context, guard = browser
    page = sign_in(context, console.url, console.approver)
    loads: list[str] = []
    page.on("load", lambda: loads.append(page.url))
    name, spiffe = console.agent("inbox")
    token = console.task(spiffe)

    held = console.call(spiffe, token, "tickets.delete", arguments={"ticket": "T-7"})
    assert held["decision"] is False and held["context"]["reason"] == "approval_required"
    rid = held["context"]["approval_request"]["id"]

    card = page.wait_for_selector(f'.approval[data-id="{rid}"]', timeout=15_000)
    assert loads == []  # pushed over server-sent events: no reload
    text = card.inner_text()
    digest = console.api("GET", f"/v1/approvals/{rid}")["digest"]
    for expected in (name, "alice@example.com", "tickets.delete", "T-7", "delete-needs-owner",
                     "clean up the queue", digest, "owner"):  # fmt: skip
        assert expected in text, (expected, text)
    assert int(page.inner_text("#badge")) >= 1
    page.wait_for_function("window.__notes.some(t => t.includes('tickets.delete'))")

    card.query_selector("input[aria-label=reason]").fill("duplicate ticket")
    card.query_selector("button.primary").click()
    page.wait_for_selector("#flash .ok")
    assert "approved" in page.inner_text("#flash")
    page.wait_for_selector(f'.approval[data-id="{rid}"]', state="detached")

    retry = console.call(spiffe, token, "tickets.delete", arguments={"ticket": "T-7"})
    assert retry["decision"] is True, retry
    again = console.call(spiffe, token, "tickets.delete", arguments={"ticket": "T-7"})
    assert again["decision"] is False and again["context"]["reason"] == "approval_required"
    assert guard.blocked == []


def test_kill_from_the_agents_page_denies_the_next_call(
    console: Console, browser: tuple[Any, Guard]
) -> None:
    context, _ = browser
    name, spiffe = console.agent("rogue")
    token = console.task(spiffe)
    assert console.call(spiffe, token, "tickets.read")["decision"] is True

    page = sign_in(context, console.url, console.admin, "/console/agents")
    page.click(f'tr[data-id="{name}"] button[data-action=suspend]')
    dialog = page.wait_for_selector("dialog#confirm")
    preview = dialog.inner_text()
    assert "live tasks" in preview and "1" in preview and "pending approvals" in preview
    page.click("#confirm-yes")
    page.wait_for_selector("#flash .ok", timeout=15_000)
    result = page.inner_text("#flash")
    assert f"suspended {name}" in result and "1 task(s) ended" in result and " ms" in result

    denied = console.call(spiffe, token, "tickets.read")
    assert denied["decision"] is False, denied
    assert console.api("GET", f"/v1/agents/{name}")["status"] == "suspended"
    page.wait_for_selector(f'tr[data-id="{name}"] button[data-action=reactivate]')


def test_denied_call_detail_names_the_policy_and_its_source_line(
    console: Console, browser: tuple[Any, Guard]
) -> None:
    context, _ = browser
    _, spiffe = console.agent("purger")
    token = console.task(spiffe)
    page = sign_in(context, console.url, console.auditor, "/console/decisions")

    denied = console.call(spiffe, token, "tickets.purge", arguments={"ticket": "T-9"})
    assert denied["decision"] is False
    decision_id = denied["context"]["decision_id"]
    row = page.wait_for_selector(f'#decisions tr[data-id="{decision_id}"]', timeout=15_000)
    assert "no-purge" in row.inner_text()
    # the stream shows the code the PEP was given, the same as the answer's context.reason
    assert row.query_selector(".reason").inner_text() == denied["context"]["reason"] == "policy"
    refused = console.call(spiffe, token, "payments.refund")  # not in the task's scope
    assert refused["context"]["reason"] == "out_of_scope"
    other = page.wait_for_selector(f'#decisions tr[data-id="{refused["context"]["decision_id"]}"]')
    assert other.query_selector(".reason").inner_text() == "out_of_scope"
    row.click()
    page.wait_for_url(f"**/console/decisions/{decision_id}")
    policy = page.wait_for_selector('section.policy[data-policy="no-purge"]')

    source = (console.policies / "approvals.cedar").read_text().splitlines()
    line = next(i for i, text in enumerate(source, 1) if text == '@id("no-purge")')
    assert policy.query_selector(".source-location").inner_text() == f"approvals.cedar:{line}:1"
    assert 'forbid (principal, action == Action::"tickets.purge"' in policy.inner_text()
    assert "forbidden by no-purge" in page.inner_text("#reason")
    assert page.inner_text("#reason-code") == "policy"  # structured: code, then policy ids
    assert page.inner_text("#reasons") == "no-purge"
    assert "verified" in page.inner_text("main")


def test_an_auditor_sees_requests_but_cannot_approve(
    console: Console, browser: tuple[Any, Guard]
) -> None:
    context, _ = browser
    _, spiffe = console.agent("audited")
    token = console.task(spiffe)
    held = console.call(spiffe, token, "tickets.delete", arguments={"ticket": "T-1"})
    rid = held["context"]["approval_request"]["id"]

    page = sign_in(context, console.url, console.auditor)
    card = page.wait_for_selector(f'.approval[data-id="{rid}"]')
    assert card.query_selector("button") is None  # no approve / deny for an auditor

    # the page's own session, with its CSRF token: the server still refuses the role
    status = page.evaluate(
        """async (rid) => {
            const csrf = document.cookie.split('; ').find(c => c.startsWith('warden_csrf='));
            const r = await fetch(`/v1/approvals/${rid}/approve`, {method: 'POST',
              headers: {'Content-Type': 'application/json', 'X-CSRF-Token': csrf.split('=')[1]},
              body: JSON.stringify({reason: 'sneaky'})});
            return [r.status, (await r.json()).error.code];
        }""",
        rid,
    )
    assert status == [403, "approval_not_permitted"]
    # and without the CSRF token the cookie alone is refused outright
    status = page.evaluate(
        """async (rid) => (await fetch(`/v1/approvals/${rid}/approve`, {method: 'POST',
              headers: {'Content-Type': 'application/json'}, body: '{}'})).status""",
        rid,
    )
    assert status == 403
    assert console.api("GET", f"/v1/approvals/{rid}")["status"] == "pending"


def test_the_policies_page_shows_the_last_rejected_change_at_line_and_column(
    console: Console, browser: tuple[Any, Guard]
) -> None:
    context, _ = browser
    broken = console.policies / "zz-broken.cedar"
    broken.write_text(
        '@id("fine")\npermit(principal, action == Action::"a", resource);\n'
        'permit(principal, action == Action::"b", resource)\nwhen { context.x === 1 };\n'
    )
    try:
        headers = {"Authorization": f"Bearer {console.admin}"}
        r = httpx.post(f"{console.url}/v1/policies/reload", headers=headers)
        assert r.status_code == 422, r.text
        page = sign_in(context, console.url, console.auditor, "/console/policies")
        error = page.wait_for_selector("#last-error .policy-error")
        assert error.query_selector(".source-location").inner_text() == "zz-broken.cedar:4:20"
        assert "when { context.x === 1 };" in error.inner_text()
    finally:
        broken.unlink()
        r = httpx.post(f"{console.url}/v1/policies/reload", headers=headers)
        assert r.status_code == 200, r.text


def test_every_page_works_with_the_network_off(
    console: Console, browser: tuple[Any, Guard]
) -> None:
    context, guard = browser
    _, spiffe = console.agent("offline")
    token = console.task(spiffe)
    console.call(spiffe, token, "tickets.read")
    console.call(spiffe, token, "tickets.delete", arguments={"ticket": "T-3"})
    denied = console.call(spiffe, token, "tickets.purge", arguments={"ticket": "T-4"})
    errors: list[str] = []
    page = sign_in(context, console.url, console.admin)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    shots = os.environ.get("CONSOLE_SCREENSHOTS")  # docs/img: the README's pictures
    page.set_viewport_size({"width": 1100, "height": 640})
    for slug in PAGES:
        page.goto(f"{console.url}/console/{slug}")
        page.wait_for_selector("body[data-ready=true]", state="attached")
        assert page.query_selector("#flash .error") is None, page.inner_text("#flash")
        if slug == "decisions":
            page.wait_for_selector("#decisions tbody tr")
        if shots and slug in SCREENSHOTS:
            page.screenshot(path=str(Path(shots) / f"console-{slug}.png"))
    page.goto(f"{console.url}/console/decisions/{denied['context']['decision_id']}")
    page.wait_for_selector("#why")
    if shots:
        page.screenshot(path=str(Path(shots) / "console-decision.png"))
    page.goto(f"{console.url}/docs")
    page.wait_for_selector(".swagger-ui .info", timeout=15_000)
    assert guard.seen and guard.blocked == []
    assert all(url.startswith(console.url) for url in guard.seen), guard.seen
    assert errors == []
