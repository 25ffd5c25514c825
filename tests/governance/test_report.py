"""Evidence reports: controls evaluated over the log with violating record ids, integrity first,
framework mappings, empty and huge periods, and one self-contained HTML file."""

from __future__ import annotations

import json
import re
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from warden.cli.main import app
from warden.core.audit import GENESIS_HASH, seal
from warden.core.model import AuditDraft, AuditRecord
from warden.evidence.catalogue import OWASP_ASI
from warden.evidence.render import render
from warden.evidence.report import build_report
from warden.service.checkpoints import IntegrityResult
from warden.storage.sql.tables import audit_events

from .conftest import World

pytestmark = pytest.mark.governance

CORE = [
    "CP-ID-01",
    "CP-OWN-01",
    "CP-CRED-01",
    "CP-CRED-04",
    "CP-AUTHZ-01",
    "CP-KILL-01",
    "CP-AUD-01",
    "CP-AUD-02",
]


def _story(world: World) -> dict[str, Any]:
    world.register("bot")
    task = world.start_task("bot", "tickets.read email.send")
    world.decide(task["access_token"], task["spiffe_id"], "tickets.read")
    world.decide(task["access_token"], task["spiffe_id"], "email.send", arguments={"to": "x@y.z"})
    world.decide("garbage", task["spiffe_id"], "tickets.read")
    world.client.post("/v1/agents/bot/suspend", json={"reason": "drill"}, headers=world.admin)
    world.decide(task["access_token"], task["spiffe_id"], "tickets.read")
    world.warden.checkpoints.create()
    return task


def _report(world: World, fmt: str = "json", **params: Any) -> Any:
    now = world.clock.now()
    query = {"from": now - 3600, "to": now + 60, "format": fmt, **params}
    r = world.client.get("/v1/reports/controls", params=query, headers=world.admin)
    assert r.status_code == 200, r.text
    return r.json() if fmt == "json" else r


def _controls(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in report["controls"]}


def test_a_clean_story_passes_the_core_controls(world: World) -> None:
    _story(world)
    report = _report(world)
    assert report["integrity"]["ok"] is True
    assert report["integrity"]["checkpoints_verified"] == 1
    controls = _controls(report)
    assert len(controls) == 25
    for cid in CORE:
        assert controls[cid]["status"] == "pass", (cid, controls[cid])
        assert controls[cid]["checked"] > 0
    assert controls["CP-CRED-01"]["measured"]["max_ttl_s"] == 300.0
    assert controls["CP-ID-01"]["measured"]["unregistered_or_inactive_denied"] >= 2
    assert controls["CP-APPR-01"]["status"] == "no_data"  # no approval records: said, not faked
    assert controls["CP-A2A-01"]["status"] == "not_evaluable"
    cred = controls["CP-CRED-01"]["maps_to"]
    assert "ASI03" in cred["owasp_asi"] and "IA-5" in cred["sp800_53"]
    assert "PR.AA-01" in cred["nist_csf_2"] and "NHI7" in cred["owasp_nhi"]
    asi = {row["id"]: row for row in report["frameworks"]["owasp_asi"]["rows"]}
    assert set(asi) == set(OWASP_ASI)
    assert asi["ASI10"]["verdict"] == "evidenced"
    assert "partial" in asi["ASI05"] and "partial" in asi["ASI06"] and "partial" in asi["ASI01"]
    assert asi["ASI03"]["title"] == "Identity and Privilege Abuse"
    maestro = {row["id"]: row for row in report["frameworks"]["maestro"]["rows"]}
    assert maestro["L7 Compromised Agents"]["layer"] == "L7 Agent Ecosystem"
    rmf = {row["id"] for row in report["frameworks"]["nist_ai_rmf"]["rows"]}
    assert {"MANAGE 2.4", "GOVERN 1.6"} <= rmf
    charts = report["charts"]
    assert sum(charts["decisions_over_time"]["allow"]) == 1
    assert sum(charts["decisions_over_time"]["deny"]) == 3
    assert charts["denies_by_policy"]["no-external-email"] == 1


def _forge(world: World, kind: str, data: dict[str, Any], **kw: Any) -> int:
    world.warden.auditor.record(kind, kw.pop("actor", "warden"), data, **kw)
    world.warden.writer.flush()
    return world.warden.store.audit_head()[0]


def test_violations_name_their_records(world: World) -> None:
    task = _story(world)
    now = world.clock.now()
    world.clock.advance(30)
    late = _forge(
        world,
        "authz.decision",
        {
            "decision": "allow",
            "action": "tickets.read",
            "reasons": ["support-read"],
            "resource": {"type": "Tool", "id": "x"},
            "policy_revision": "r",
        },
        agent="bot",
        task_id=task["task_id"],
        decision_id="dec_late",
        actor=task["spiffe_id"],
    )
    long_lived = _forge(
        world,
        "credential.issued",
        {"jti": "j_long", "issued_at": now, "expires_at": now + 7200, "audience": ["warden"]},
        agent="bot",
        task_id=task["task_id"],
    )
    leaky = _forge(world, "tool.output", {"text": "Authorization: Bearer " + "a" * 40})
    world.warden.checkpoints.create()
    controls = _controls(_report(world))
    assert controls["CP-KILL-01"]["status"] == "fail"
    assert late in controls["CP-KILL-01"]["violating_seqs"]
    assert late in controls["CP-ID-01"]["violating_seqs"]
    assert controls["CP-CRED-01"]["violating_seqs"] == [long_lived]
    assert controls["CP-CRED-03"]["violating_seqs"] == [leaky]
    assert late in controls["CP-AUTHZ-03"]["violating_seqs"]  # revision `r` was never loaded
    assert controls["CP-AUTHZ-01"]["status"] == "pass"
    assert any("bearer token" in n for n in controls["CP-CRED-03"]["notes"])


def test_monitor_mode_and_policy_less_allows_break_mediation(world: World) -> None:
    world.register("bot")
    task = world.start_task("bot", "tickets.read tickets.delete")
    world.decide(task["access_token"], task["spiffe_id"], "tickets.delete")  # monitor policy
    world.warden.checkpoints.create()
    control = _controls(_report(world))["CP-AUTHZ-01"]
    assert control["status"] == "fail"
    assert any("monitor mode" in n for n in control["notes"])


def test_a_tampered_log_is_the_first_thing_the_report_says(world: World) -> None:
    _story(world)
    engine = world.warden.store.engine  # type: ignore[attr-defined]
    with engine.begin() as conn:
        conn.execute(sa.update(audit_events).where(audit_events.c.seq == 3).values(actor="x"))
    report = _report(world)
    assert report["integrity"]["ok"] is False and report["integrity"]["first_bad_seq"] == 3
    assert report["integrity"]["statement"].startswith("THE AUDIT LOG FAILS VERIFICATION")
    assert _controls(report)["CP-AUD-02"]["status"] == "fail"
    html = _report(world, "html").text
    banner = html.index("FAILS VERIFICATION")
    assert banner < html.index("<h2>")  # before any chart or control
    md = _report(world, "md").text
    assert md.index("❌") < md.index("## Controls")


def test_an_empty_period_is_reported_not_invented(world: World) -> None:
    _story(world)
    now = world.clock.now()
    report = _report(world, **{"from": now + 3600, "to": now + 7200})
    assert report["summary"]["records_in_period"] == 0
    statuses = {
        c["status"] for c in report["controls"] if c["id"] not in ("CP-AUD-02", "CP-AUD-04")
    }
    assert statuses <= {"no_data", "not_evaluable", "pass"}
    assert all(c["violations"] == 0 for c in report["controls"])
    bad = world.client.get(
        "/v1/reports/controls", params={"from": now, "to": now - 1}, headers=world.admin
    )
    assert bad.status_code == 400
    bad = world.client.get("/v1/reports/controls", params={"format": "pdf"}, headers=world.admin)
    assert bad.status_code == 400


def test_html_is_one_self_contained_file_with_charts(world: World) -> None:
    _story(world)
    r = _report(world, "html")
    assert r.headers["content-type"].startswith("text/html")
    html = r.text
    assert html.count("<svg") == 3
    for external in ("<script", "src=", "<link", "url(", "@import"):
        assert external not in html
    # the only URLs are the SVG namespace and cited sources, never fetched
    urls = set(re.findall(r"https?://[^\s\"'<)]+", html))
    assert urls <= {
        "http://www.w3.org/2000/svg",
        "https://genai.owasp.org/resource/owasp-top-10-for-agentic-applications-for-2026/",
    }
    assert "CP-KILL-01" in html and "ASI10" in html


def _synthetic(n: int) -> Iterator[AuditRecord]:
    prev = GENESIS_HASH
    for seq in range(1, n + 1):
        draft = AuditDraft(
            ts=1_800_000_000.0 + seq,
            type="authz.decision",
            actor="spiffe://example.org/agent/bot",
            data={
                "decision": "allow" if seq % 3 else "deny",
                "action": "tickets.read",
                "reasons": ["support-read"],
                "padding": "x" * 2000,
            },
            agent="bot",
            decision_id=f"dec_{seq}",
        )
        rec = seal(seq, prev, draft)
        prev = rec.hash
        yield rec


def test_a_huge_period_streams_in_bounded_memory_with_progress() -> None:
    n = 20_000  # ~45 MB of records if they were all held at once
    seen: list[int] = []

    def verify(records: Any) -> IntegrityResult:
        count = sum(1 for _ in records)
        return IntegrityResult(ok=True, records=count, head_hash="h", checkpoints=0)

    tracemalloc.start()
    report = build_report(
        _synthetic(n),
        verify,
        start=1_800_000_000.0,
        end=1_800_000_000.0 + n + 1,
        generated_at=1_900_000_000.0,
        progress=seen.append,
    )
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert sum(seen) == n and len(seen) >= n // 1000
    assert report["summary"]["records_in_period"] == n
    assert peak < 12 * 1024 * 1024, peak
    control = {c["id"]: c for c in report["controls"]}["CP-AUTHZ-01"]
    assert control["checked"] == n


def test_cli_report_controls_writes_each_format(world: World, tmp_path: Path) -> None:
    _story(world)
    world.warden.writer.flush()
    data_dir = str(world.warden.settings.data_dir)
    runner = CliRunner()
    for fmt in ("html", "md", "json"):
        out = tmp_path / f"report.{fmt}"
        result = runner.invoke(
            app,
            [
                "report",
                "controls",
                "--from",
                "2d",
                "--to",
                "0s",
                "--format",
                fmt,
                "--out",
                str(out),
                "--data-dir",
                data_dir,
            ],
        )
        assert result.exit_code == 0, result.output
        assert "pass" in result.stderr
        assert out.stat().st_size > 1000
    body = json.loads((tmp_path / "report.json").read_text())
    assert body["integrity"]["ok"] is True
    bad = runner.invoke(app, ["report", "controls", "--format", "pdf", "--data-dir", data_dir])
    assert bad.exit_code == 1
    engine = world.warden.store.engine  # type: ignore[attr-defined]
    with engine.begin() as conn:
        conn.execute(sa.update(audit_events).where(audit_events.c.seq == 2).values(actor="x"))
    tampered = runner.invoke(app, ["report", "controls", "--format", "md", "--data-dir", data_dir])
    assert tampered.exit_code == 2
    assert "FAILS VERIFICATION" in tampered.stderr


def test_renderers_share_one_report(world: World) -> None:
    _story(world)
    report = _report(world)
    assert json.loads(render(report, "json")) == report
    md = render(report, "md")
    assert "| CP-KILL-01 Kill switch works | PASS |" in md
