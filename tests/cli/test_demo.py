"""``warden demo``: the end-to-end story against a real server process."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from warden.demo.story import Demo, StepError, all_steps, run_steps

pytestmark = pytest.mark.slow


def test_demo_runs_the_whole_story() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "warden.cli.main", "demo"],
        capture_output=True,
        text=True,
        timeout=300,  # a loaded 2-core CI machine runs the whole story in well over a minute
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    for line in [
        "1. Register an agent with an accountable owner",
        "✔ 201 Created",
        "JWT-SVID claims:",
        "✔ granted scope = requested ∩ entitlements: tickets.read email.send",
        "✔ decision true: reading the ticket is allowed",
        "✔ decision false, reason out_of_scope",
        "✔ decision false: email outside example.com is forbidden by policy `no-external-email`",
        "✔ the agent completed its own task with its task credential",
        "✔ decision false, reason invalid_credential",
        "✔ the audit hash chain verifies",
        "✔ decision false, reason approval_required: policy `deletes-need-owner-approval`",
        "✔ the retry of the same call is allowed",
        "✔ a second retry is held again: the grant was for one call",
        # the MCP chapter (issue 6)
        "✔ denied with -32001 by policy `no-external-email`",
        "✔ denied with -32001: payments.refund is outside the task's scope",
        "✔ held with -32001 for approval by policy `deletes-need-owner-approval`",
        "✔ bob approves it: a one-time grant for that call",
        "✔ the client's retry through the proxy passes: the deletion ran, once",
        "✔ a second deletion is held again: the grant was for one call",
        # the integrity chapter (issue 14)
        "✔ refused: manifest_mismatch (system_prompt), audited with what differed",
        # the story ends with the evidence
        f"{len(all_steps())}. Evidence: the controls report over the whole story",
        "✔ one self-contained HTML file with charts",
    ]:
        assert line in out, f"missing {line!r} in:\n{out}"
    # feature chapters add steps: the count is not this test's business
    assert re.search(r"✔ all \d+ steps behaved as expected", out), out
    assert "✘" not in out
    # the throw-away server and its data folder are gone
    data_dir = re.search(r"data in (\S+)\)", out)
    assert data_dir is not None
    assert not Path(data_dir.group(1)).exists()


def test_a_misbehaving_step_fails_the_demo(capsys: pytest.CaptureFixture[str]) -> None:
    def good(d: Demo) -> None:
        d.check(True, "fine")

    def bad(d: Demo) -> None:
        d.check(False, "decision false", {"decision": True})

    def never(d: Demo) -> None:  # pragma: no cover - must not run after a failure
        raise AssertionError("ran after a failed step")

    with httpx.Client() as http:
        demo = Demo("http://127.0.0.1:1", Path("."), http, "token")
        assert run_steps(demo, [("good", good), ("bad", bad), ("never", never)]) is False
        assert run_steps(demo, [("good", good)]) is True
    out = capsys.readouterr().out
    assert '✘ expected: decision false — got {"decision": true}' in out
    assert "✘ step 2 failed: bad" in out
    assert isinstance(StepError("x"), Exception)
