"""Item 3: replay recorded decisions against a candidate policy set."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import World

pytestmark = pytest.mark.policy

TIGHTEN_READS = """
@id("no-reading-archived")
forbid (principal, action == Action::"tickets.read", resource)
when { context has arguments && context.arguments has archived && context.arguments.archived };
"""
APPROVE_EMAIL = """
@id("email-needs-approval")
@approval("owner")
forbid (principal, action == Action::"email.send", resource);
"""
READS_SECRET = """
@id("key-check")
forbid (principal, action == Action::"tickets.read", resource)
when { context has arguments && context.arguments has api_key && context.arguments.api_key == "x" };
"""


def _traffic(world: World) -> dict[str, list[str]]:
    """A small day of traffic; returns decision ids by kind."""
    world.register()
    task = world.start_task(scope="tickets.read email.send tickets.delete")
    token, sid = task["access_token"], task["spiffe_id"]
    ids: dict[str, list[str]] = {"archived": [], "fresh": [], "internal": [], "external": []}
    for archived in (True, True, False):
        d = world.decide(token, sid, "tickets.read", arguments={"archived": archived, "id": 1})
        assert d["decision"] is True
        ids["archived" if archived else "fresh"].append(d["context"]["decision_id"])
    for to in ("a@example.com", "b@example.com"):
        d = world.decide(token, sid, "email.send", arguments={"to": to})
        assert d["decision"] is True
        ids["internal"].append(d["context"]["decision_id"])
    d = world.decide(token, sid, "email.send", arguments={"to": "x@evil.test"})
    assert d["decision"] is False
    ids["external"].append(d["context"]["decision_id"])
    out_of_scope = world.decide(token, sid, "tickets.export")  # refused before Cedar
    assert out_of_scope["decision"] is False
    return ids


def _candidate(world: World, tmp_path: Path, extra: str) -> dict[str, str]:
    folder = tmp_path / "candidate"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(world.policies, folder)
    (folder / "candidate.cedar").write_text(extra)
    return {p.name: p.read_text() for p in folder.iterdir() if p.is_file()}


def _replay(world: World, files: dict[str, str], **body: Any) -> dict[str, Any]:
    r = world.client.post(
        "/v1/policies/replay", json={"files": files, "since": "1h", **body}, headers=world.admin
    )
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def test_decision_records_hold_what_replay_needs(world: World) -> None:
    _traffic(world)
    records = list(world.audit("authz.decision"))
    cedar = [r for r in records if "cedar" in r["data"]]
    assert len(cedar) == 6
    for r in records:
        assert r["data"]["policy_revision"] == world.warden.pdp.revision
    first = cedar[0]["data"]
    assert first["cedar"]["principal"]["type"] == "Agent"
    assert first["cedar"]["context"]["warden"]["task"]["category"] == "support"
    assert first["policy_outcome"] == "allow"


def test_tightening_a_rule_reports_allow_to_deny(world: World, tmp_path: Path) -> None:
    ids = _traffic(world)
    report = _replay(world, _candidate(world, tmp_path, TIGHTEN_READS))
    assert report["examined"] == 7 and report["replayed"] == 6 and report["skipped"] == 1
    assert report["changed"] == 2 and report["unchanged"] == 4
    change = report["transitions"]["allow→deny"]
    assert change["count"] == 2 and sorted(change["examples"]) == sorted(ids["archived"])
    (by_policy,) = report["by_policy"]
    assert by_policy["key"] == "no-reading-archived" and by_policy["total"] == 2
    (by_tool,) = report["by_tool"]
    assert by_tool["key"] == "tickets.read"
    (by_agent,) = report["by_agent"]
    assert by_agent["key"] == "support-bot"
    assert report["exceeded"] == []


def test_a_candidate_reading_facts_the_live_set_never_reads(world: World, tmp_path: Path) -> None:
    """Cedar only gets the facts the live policies read (ADR 0140), but the decision record keeps
    every one: a candidate reading another still replays right."""
    ids = _traffic(world)
    cedar = [r["data"]["cedar"] for r in world.audit("authz.decision") if "cedar" in r["data"]]
    assert all(c["context"]["warden"]["depth"] == 0 for c in cedar)
    assert all(c["context"]["warden"]["task"]["purpose"] for c in cedar)
    root_only = (
        '@id("root-only") forbid (principal, action, resource) when { context.warden.depth == 0 };'
    )
    report = _replay(world, _candidate(world, tmp_path, root_only))
    assert report["replayed"] == 6 and report["unchanged"] == 1 and report["uncertain"] == 0
    change = report["transitions"]["allow→deny"]
    assert change["count"] == 5
    assert sorted(change["examples"]) == sorted(ids["archived"] + ids["fresh"] + ids["internal"])


def test_approval_newly_required_and_thresholds(world: World, tmp_path: Path) -> None:
    ids = _traffic(world)
    files = _candidate(world, tmp_path, APPROVE_EMAIL)
    report = _replay(world, files, thresholds={"new_approvals": 1, "allow_to_deny": 5})
    assert report["transitions"]["allow→approval"]["count"] == 2
    assert sorted(report["transitions"]["allow→approval"]["examples"]) == sorted(ids["internal"])
    # the external email was already denied by a plain forbid: still a plain deny
    assert "deny→approval" not in report["transitions"]
    assert report["figures"]["new_approvals"] == 2
    assert report["exceeded"] == ["new_approvals: 2 > 1"]


def test_a_loosened_rule_reports_deny_to_allow(world: World, tmp_path: Path) -> None:
    ids = _traffic(world)
    files = _candidate(
        world,
        tmp_path,
        '@id("any-email") permit(principal, action == Action::"email.send", resource);',
    )
    files["agents.cedar"] = files["agents.cedar"].replace(
        '@id("no-external-email")', '@id("no-external-email")\n@mode("monitor")'
    )
    report = _replay(world, files, agent="support-bot", thresholds={"deny_to_allow": 0})
    assert report["transitions"]["deny→allow"]["examples"] == ids["external"]
    assert {row["key"] for row in report["by_policy"]} == {"any-email", "no-external-email"}
    assert report["exceeded"] == ["deny_to_allow: 1 > 0"]
    assert _replay(world, files, agent="someone-else")["examined"] == 0


def test_a_masked_value_makes_a_result_uncertain(world: World, tmp_path: Path) -> None:
    world.register()
    task = world.start_task(scope="tickets.read")
    d = world.decide(
        task["access_token"], task["spiffe_id"], "tickets.read", arguments={"api_key": "x"}
    )
    record = next(
        r for r in world.audit("authz.decision") if r["decision_id"] == d["context"]["decision_id"]
    )
    stored = record["data"]["cedar"]["context"]["arguments"]["api_key"]
    assert stored["__masked"].startswith("sha256:") and "x" not in stored["__masked"][7:8]
    assert record["data"]["cedar"]["masked"] == ["context.arguments.api_key"]
    report = _replay(world, _candidate(world, tmp_path, READS_SECRET))
    assert report["uncertain"] == 1
    assert report["uncertain_examples"] == [d["context"]["decision_id"]]
    # a candidate that never reads the secret is certain
    assert _replay(world, _candidate(world, tmp_path, TIGHTEN_READS))["uncertain"] == 0


def test_an_invalid_candidate_or_body_is_a_clear_4xx(world: World) -> None:
    bad = world.client.post(
        "/v1/policies/replay",
        json={"files": {"a.cedar": "permit(principal, action, resource"}},
        headers=world.admin,
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["details"]["errors"][0]["line"] == 1
    for body in (
        {},
        {"files": {"a.cedar": "permit(principal, action, resource);"}, "since": "yesterday"},
        {"files": {"a.cedar": "permit(principal, action, resource);"}, "thresholds": {"nope": 1}},
        {"files": {"a.cedar": "permit(principal, action, resource);"}, "limit": -1},
    ):
        r = world.client.post("/v1/policies/replay", json=body, headers=world.admin)
        assert r.status_code == 400, (body, r.text)
    assert world.client.post("/v1/policies/replay", json={}).status_code == 401
