"""Item 4: `warden policies explain` and the coverage report of `warden policies test`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.api.conftest import World
from warden.cli.main import app

pytestmark = pytest.mark.policy

EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "warden" / "examples" / "policies"


def _request(tmp_path: Path, to: str, category: str) -> Path:
    doc = {
        "request": {
            "subject": {"type": "Agent", "id": "spiffe://example.org/agent/bot"},
            "action": {"name": "email.send"},
            "resource": {"type": "Tool", "id": "email.send"},
            "context": {"arguments": {"to": to}},
        },
        "subject_parents": [{"type": "Group", "id": "support"}],
        "warden": {"now": 1, "task": {"category": category}},
    }
    path = tmp_path / "request.json"
    path.write_text(json.dumps(doc))
    return path


def _explain(*args: str) -> dict[str, object]:
    result = CliRunner().invoke(app, ["policies", "explain", *args, "--json"])
    assert result.exit_code == 0, result.output
    out: dict[str, object] = json.loads(result.stdout)
    return out


def test_explain_names_determining_overridden_and_reads(tmp_path: Path) -> None:
    out = _explain(str(_request(tmp_path, "a@example.com", "read-only")), "-p", str(EXAMPLES))
    assert out["allowed"] is False
    assert out["determining"] == ["read-only-tasks-send-nothing"]
    assert out["overridden"] == ["support-email-internal"]  # its condition holds; a forbid wins
    reads = out["reads"]
    assert isinstance(reads, dict)
    assert reads["context.arguments.to"] is True
    assert reads["context.warden.task.category"] is True
    allowed = _explain(str(_request(tmp_path, "a@example.com", "support")), "-p", str(EXAMPLES))
    assert allowed["allowed"] is True and allowed["determining"] == ["support-email-internal"]
    assert allowed["overridden"] == []
    text = CliRunner().invoke(
        app,
        ["policies", "explain", str(_request(tmp_path, "x@evil.test", "x")), "-p", str(EXAMPLES)],
    )
    assert "no-external-email" in text.stdout and "context fields read" in text.stdout


def test_explain_a_recorded_decision(world: World, tmp_path: Path) -> None:
    world.register()
    task = world.start_task(scope="email.send")
    world.decide(
        task["access_token"], task["spiffe_id"], "email.send", arguments={"to": "x@evil.test"}
    )
    record = next(r for r in world.audit("authz.decision") if "cedar" in r["data"])
    path = tmp_path / "decision.json"
    path.write_text(json.dumps(record))
    out = _explain(str(path), "-p", str(world.policies))
    assert out["allowed"] is False and out["determining"] == ["no-external-email"]


def test_policies_test_reports_what_no_case_exercises(tmp_path: Path) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text(
        """
cases:
  - name: internal email
    request:
      subject: {type: Agent, id: "spiffe://example.org/agent/bot"}
      action: {name: email.send}
      resource: {type: Tool, id: email.send}
      context: {arguments: {to: a@example.com}}
    subject_parents: [{type: Group, id: support}]
    warden: {task: {category: read-only}}
    expect: deny
"""
    )
    result = CliRunner().invoke(app, ["policies", "test", str(EXAMPLES), str(cases), "--json"])
    assert result.exit_code == 0, result.output
    untested = {u["id"] for u in json.loads(result.stdout)["unexercised"]}
    # the forbid determined, the permit was overridden: both exercised
    assert "read-only-tasks-send-nothing" not in untested
    assert "support-email-internal" not in untested
    assert {"no-bulk-export", "support-tickets", "deletes-need-owner-approval"} <= untested
    strict = CliRunner().invoke(
        app, ["policies", "test", str(EXAMPLES), str(cases), "--require-coverage"]
    )
    assert strict.exit_code == 1
    assert "no case exercises" in strict.stdout and "no-bulk-export" in strict.stdout
    full = CliRunner().invoke(
        app, ["policies", "test", str(EXAMPLES), str(EXAMPLES / "cases.yaml"), "--json"]
    )
    assert full.exit_code == 0
