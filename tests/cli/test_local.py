"""Commands that need no server: version, policies validate/test, audit verify, dev svid."""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from warden.cli.client import error_text
from warden.cli.dev import DEV_TRUST_DOMAIN, dev_trust_dir
from warden.cli.main import app
from warden.cli.serve import apply_dev_settings, example_policies_dir, masked_url
from warden.cli.timeparse import parse_since
from warden.config import Settings, load_settings
from warden.core.model import AuditDraft
from warden.demo.server import free_port
from warden.demo.story import jwt_claims
from warden.storage.sql import open_store, sqlite_url_for
from warden.storage.sql.tables import audit_events
from warden.tokens.svid import DevTrustDomain

EXAMPLE_IDS = [
    "support-tickets",
    "support-email-internal",
    "no-external-email",
    "no-bulk-export",
    "read-only-tasks-send-nothing",
    "support-delete",
    "deletes-need-owner-approval",
]


def test_version(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == "warden 0.1.0"


def test_help_lists_the_command_groups(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in ("serve", "agents", "tasks", "policies", "audit", "reports", "dev", "demo"):
        assert name in result.output


# -- policies validate / test ---------------------------------------------------------------


def test_validate_examples(runner: CliRunner, examples: Path) -> None:
    result = runner.invoke(app, ["policies", "validate", str(examples)])
    assert result.exit_code == 0, result.output
    assert f"ok: {len(EXAMPLE_IDS)} policies in {examples}" in result.output
    assert "revision " in result.output
    for pid in EXAMPLE_IDS:
        assert pid in result.output


def test_validate_json(runner: CliRunner, examples: Path) -> None:
    result = runner.invoke(app, ["policies", "validate", str(examples), "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["ok"] is True
    assert len(body["revision"]) == 64
    assert sorted(p["id"] for p in body["policies"]) == sorted(EXAMPLE_IDS)
    effects = {p["id"]: p["effect"] for p in body["policies"]}
    assert effects["no-external-email"] == "forbid"
    assert effects["support-tickets"] == "permit"


def test_validate_broken_folder(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "good.cedar").write_text('@id("ok")\npermit (principal, action, resource);\n')
    (tmp_path / "bad.cedar").write_text("permit (principal, action, resource) when { 1 + };\n")
    result = runner.invoke(app, ["policies", "validate", str(tmp_path)])
    assert result.exit_code == 1
    assert "error: policy_invalid:" in result.stderr
    assert "`bad.cedar`" in result.stderr
    assert "ok:" not in result.stdout


def test_validate_duplicate_ids(runner: CliRunner, tmp_path: Path) -> None:
    policy = '@id("same")\npermit (principal, action, resource);\n'
    (tmp_path / "a.cedar").write_text(policy)
    (tmp_path / "b.cedar").write_text(policy)
    result = runner.invoke(app, ["policies", "validate", str(tmp_path)])
    assert result.exit_code == 1
    assert "duplicate policy id `same`" in result.stderr


def test_validate_missing_folder(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["policies", "validate", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert "is not a folder" in result.stderr


def test_policy_cases_pass(runner: CliRunner, examples: Path) -> None:
    result = runner.invoke(app, ["policies", "test", str(examples), str(examples / "cases.yaml")])
    assert result.exit_code == 0, result.output
    assert "ok: 10 passed, 0 failed" in result.output
    assert "no-external-email" in result.output
    assert "✘" not in result.output


def test_policy_cases_failure_exits_1(runner: CliRunner, examples: Path, tmp_path: Path) -> None:
    cases = {
        "cases": [
            {
                "name": "reading is allowed",
                "request": {
                    "subject": {"type": "Agent", "id": "spiffe://example.org/agent/a"},
                    "action": {"name": "tools/call"},
                    "resource": {"type": "tool", "id": "tickets.read"},
                },
                "subject_parents": [{"type": "Group", "id": "support"}],
                "expect": "allow",
            },
            {
                "name": "wrongly expects external email to pass",
                "request": {
                    "subject": {"type": "Agent", "id": "spiffe://example.org/agent/a"},
                    "action": {"name": "tools/call"},
                    "resource": {"type": "tool", "id": "email.send"},
                    "context": {"arguments": {"to": "x@elsewhere.test"}},
                },
                "subject_parents": [{"type": "Group", "id": "support"}],
                "expect": "allow",
            },
        ]
    }
    path = tmp_path / "cases.json"
    path.write_text(json.dumps(cases))
    result = runner.invoke(app, ["policies", "test", str(examples), str(path)])
    assert result.exit_code == 1
    assert "FAILED: 1 passed, 1 failed" in result.output
    assert "✘ wrongly expects external email to pass: expected allow, got deny" in result.output

    as_json = runner.invoke(app, ["policies", "test", str(examples), str(path), "--json"])
    assert as_json.exit_code == 1
    body = json.loads(as_json.stdout)
    assert (body["passed"], body["failed"]) == (1, 1)
    assert body["cases"][1]["reasons"] == ["no-external-email"]


def test_policy_cases_bad_file(runner: CliRunner, examples: Path, tmp_path: Path) -> None:
    path = tmp_path / "cases.yaml"
    path.write_text("not: [a, cases, file\n")
    result = runner.invoke(app, ["policies", "test", str(examples), str(path)])
    assert result.exit_code == 1
    assert "error: invalid_parameter:" in result.stderr


def test_policy_cases_against_broken_policies(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "bad.cedar").write_text("forbid (")
    cases = example_policies_dir() / "cases.yaml"
    result = runner.invoke(app, ["policies", "test", str(tmp_path), str(cases)])
    assert result.exit_code == 1
    assert "error: policy_invalid:" in result.stderr


# -- audit verify (local) -------------------------------------------------------------------


def _fill(data_dir: Path, n: int) -> str:
    store = open_store(sqlite_url_for(data_dir))
    try:
        store.migrate()
        now = time.time()
        store.append_audit(
            [
                AuditDraft(ts=now + i, type="test.event", actor="tester", data={"i": i})
                for i in range(1, n + 1)
            ]
        )
        return store.audit_head()[1]
    finally:
        store.close()


def _tamper(data_dir: Path, statement: sa.Executable) -> None:
    engine = sa.create_engine(sqlite_url_for(data_dir))
    try:
        with engine.begin() as conn:
            conn.execute(statement)
    finally:
        engine.dispose()


def test_audit_verify_ok_then_broken(runner: CliRunner, tmp_path: Path) -> None:
    head = _fill(tmp_path, 25)
    result = runner.invoke(app, ["audit", "verify", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"ok: 25 records, head {head}"

    _tamper(
        tmp_path,
        sa.update(audit_events).where(audit_events.c.seq == 7).values(data='{"i":700}'),
    )
    result = runner.invoke(app, ["audit", "verify", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "broken at seq 7: record content does not match hash" in result.stdout

    as_json = runner.invoke(app, ["audit", "verify", "--data-dir", str(tmp_path), "--json"])
    assert as_json.exit_code == 1
    body = json.loads(as_json.stdout)
    assert (body["ok"], body["first_bad_seq"], body["records"]) == (False, 7, 6)


def _run_on_a_terminal(args: list[str]) -> tuple[int, str]:
    """Run the CLI with its stdout on a pseudo-terminal, as a person at a shell would."""
    main, child = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "warden.cli.main", *args],
            stdin=subprocess.DEVNULL,
            stdout=child,
            stderr=child,
            timeout=120,
            check=False,
        )
        os.close(child)
        child = -1
        out = b""
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the terminal's other end is closed
                break
            if not chunk:
                break
            out += chunk
        return proc.returncode, out.decode(errors="replace")
    finally:
        os.close(main)
        if child != -1:
            os.close(child)


def test_an_html_report_is_a_file_or_a_pipe_never_the_terminal(tmp_path: Path) -> None:
    _fill(tmp_path, 3)
    base = ["report", "controls", "--data-dir", str(tmp_path), "--format", "html"]
    code, shown = _run_on_a_terminal(base)
    assert code != 0 and "give `-o report.html`, or pipe the output" in shown, shown
    assert "<html" not in shown.lower()
    piped = subprocess.run(
        [sys.executable, "-m", "warden.cli.main", *base],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert piped.returncode == 0, piped.stderr
    assert "<html" in piped.stdout.lower()
    out = tmp_path / "report.html"
    code, _ = _run_on_a_terminal([*base, "-o", str(out)])
    assert code == 0 and "<html" in out.read_text().lower()


def test_audit_verify_names_a_removed_record(runner: CliRunner, tmp_path: Path) -> None:
    _fill(tmp_path, 10)
    _tamper(tmp_path, sa.delete(audit_events).where(audit_events.c.seq == 4))
    result = runner.invoke(app, ["audit", "verify", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "broken at seq 5: expected seq 4" in result.stdout


def test_audit_verify_by_database_url(runner: CliRunner, tmp_path: Path) -> None:
    head = _fill(tmp_path, 3)
    url = sqlite_url_for(tmp_path)
    result = runner.invoke(app, ["audit", "verify", "--database-url", url])
    assert result.exit_code == 0, result.output
    assert f"ok: 3 records, head {head}" in result.stdout


def test_audit_verify_large_log_streams(runner: CliRunner, tmp_path: Path) -> None:
    _fill(tmp_path, 2500)  # more than one page of iter_audit and of the progress counter
    result = runner.invoke(app, ["audit", "verify", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "ok: 2500 records" in result.stdout


def test_audit_verify_without_database(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["audit", "verify", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "no Warden database" in result.stderr
    assert not (tmp_path / "warden.db").exists()  # verify never creates a database


# -- the HTTP client's error handling -------------------------------------------------------


def test_connection_refused_says_what_to_do(runner: CliRunner, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    (tmp_path / "admin.token").write_text("wdn_op_x\n")
    result = runner.invoke(app, ["agents", "list", "--url", url, "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert f"is `warden serve` running at {url}?" in result.stderr


def test_missing_operator_token(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["agents", "list", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "error: no operator token: set WARDEN_TOKEN" in result.stderr


def test_error_bodies_render_code_and_message() -> None:
    warden_error = httpx.Response(
        404, json={"error": {"code": "not_found", "message": "agent `x` not found"}}
    )
    assert error_text(warden_error) == "not_found: agent `x` not found"
    oauth = httpx.Response(400, json={"error": "invalid_grant", "error_description": "nope"})
    assert error_text(oauth) == "invalid_grant: nope"
    plain = httpx.Response(502, text="Bad Gateway")
    assert error_text(plain) == "http_502: Bad Gateway"


# -- dev helpers ----------------------------------------------------------------------------


def test_dev_svid_with_a_given_spiffe_id(runner: CliRunner, tmp_path: Path) -> None:
    DevTrustDomain.create(DEV_TRUST_DOMAIN, dev_trust_dir(tmp_path))
    sid = "spiffe://example.org/agent/demo-agent"
    result = runner.invoke(
        app,
        [
            "dev",
            "svid",
            "demo-agent",
            "--spiffe-id",
            sid,
            "--data-dir",
            str(tmp_path),
            "--ttl",
            "60",
        ],
    )
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    claims = jwt_claims(token)
    assert claims["sub"] == sid
    assert claims["aud"] == "warden"
    assert claims["exp"] - claims["iat"] == 60


def test_dev_svid_without_trust_domain(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "dev",
            "svid",
            "a",
            "--spiffe-id",
            "spiffe://example.org/agent/a",
            "--data-dir",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 1
    assert "warden serve --dev" in result.stderr


def test_dev_settings(tmp_path: Path) -> None:
    settings = apply_dev_settings(Settings(data_dir=tmp_path))
    assert [td.name for td in settings.trust_domains] == ["example.org"]
    assert settings.trust_domains[0].bundle_file.is_file()
    assert settings.policies_dir == example_policies_dir()
    # a second start reuses the same key
    again = apply_dev_settings(Settings(data_dir=tmp_path))
    assert again.trust_domains[0].bundle_file.read_text() == (
        settings.trust_domains[0].bundle_file.read_text()
    )
    # what is configured stays
    mine = tmp_path / "mine"
    shutil.copytree(example_policies_dir(), mine)
    kept = apply_dev_settings(Settings(data_dir=tmp_path, policies_dir=mine))
    assert kept.policies_dir == mine


def test_sample_config_loads() -> None:
    settings = load_settings(example_policies_dir().parent / "warden.yaml")
    assert settings.port == 8080
    assert settings.credential_ttl == 300
    assert settings.svid_audience == "warden"


def test_masked_database_url() -> None:
    assert masked_url("postgresql://warden:s3cret@db/warden") == "postgresql://warden:***@db/warden"
    assert masked_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1700000000", 1700000000.0),
        ("15m", 1000.0 - 900),
        ("2h", 1000.0 - 7200),
        ("2024-01-01T00:00:00Z", 1704067200.0),
        (None, None),
    ],
)
def test_parse_since(text: str | None, expected: float | None) -> None:
    assert parse_since(text, now=1000.0) == expected


def test_parse_since_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="not a time"):
        parse_since("yesterday")
