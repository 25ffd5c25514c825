"""Tamper evidence: signed checkpoints verify with the public JWKS alone; tampering with a
record, a checkpoint, or the whole chain (a database administrator rewriting history) is
detected, and so is truncation — by the API, the CLI, and against checkpoints held outside."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from warden.cli.main import app
from warden.core.audit import GENESIS_HASH, chain_hash
from warden.core.model import AuditDraft
from warden.errors import TokenInvalidError
from warden.service.checkpoints import checkpoint_line
from warden.service.sinks import FileSink
from warden.storage.sql.tables import audit_checkpoints, audit_events
from warden.tokens.checkpoint import verify_checkpoint

from .conftest import World

pytestmark = pytest.mark.governance


def _activity(world: World) -> None:
    world.register("bot")
    task = world.start_task("bot")
    world.decide(task["access_token"], task["spiffe_id"], "tickets.read")


def _verify(world: World) -> dict[str, Any]:
    r = world.client.get("/v1/audit/verify", headers=world.admin)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _sql(world: World, statement: Any) -> None:
    engine = world.warden.store.engine  # type: ignore[attr-defined]
    with engine.begin() as conn:
        conn.execute(statement)


def test_a_checkpoint_verifies_with_the_public_jwks_alone(world: World) -> None:
    _activity(world)
    r = world.client.post("/v1/audit/checkpoints", headers=world.admin)
    assert r.status_code == 201 and r.json()["created"] is True
    cp = r.json()["checkpoint"]
    head = world.warden.store.audit_head()
    assert (cp["seq"], cp["head_hash"]) == head
    jwks = world.client.get("/.well-known/jwks.json").json()
    claims = verify_checkpoint(cp["jws"], jwks)
    assert claims["seq"] == cp["seq"] and claims["head"] == cp["head_hash"]
    assert claims["iss"] == world.warden.settings.effective_issuer
    # nothing new: no second checkpoint for the same head
    again = world.client.post("/v1/audit/checkpoints", headers=world.admin)
    assert again.status_code == 200 and again.json()["created"] is False
    with pytest.raises(TokenInvalidError):
        verify_checkpoint(cp["jws"], {"keys": []})
    body = _verify(world)
    assert body["ok"] is True and body["checkpoints"] == 1


def test_tampering_with_a_stored_record_is_detected(world: World) -> None:
    _activity(world)
    world.warden.checkpoints.create()
    decision = world.audit("authz.decision")[0]
    forged = json.dumps(
        {**decision["data"], "decision": "deny"}, sort_keys=True, separators=(",", ":")
    )
    _sql(
        world,
        sa.update(audit_events).where(audit_events.c.seq == decision["seq"]).values(data=forged),
    )
    body = _verify(world)
    assert body["ok"] is False
    assert body["first_bad_seq"] == decision["seq"]
    assert body["kind"] == "record"


def test_tampering_with_a_checkpoint_is_detected(world: World) -> None:
    _activity(world)
    cp = world.warden.checkpoints.create()
    assert cp is not None
    # the stored head no longer matches what was signed
    _sql(
        world,
        sa.update(audit_checkpoints)
        .where(audit_checkpoints.c.seq == cp.seq)
        .values(head_hash="f" * 64),
    )
    body = _verify(world)
    assert body["ok"] is False and body["kind"] == "checkpoint"
    assert "altered" in body["problem"]
    # a re-signed payload without the key: the signature fails
    head, payload, sig = cp.jws.split(".")
    forged = f"{head}.{payload[:-4]}AAAA.{sig}"
    _sql(
        world,
        sa.update(audit_checkpoints)
        .where(audit_checkpoints.c.seq == cp.seq)
        .values(head_hash=cp.head_hash, jws=forged),
    )
    body = _verify(world)
    assert body["ok"] is False and "does not verify" in body["problem"]


def _rewrite_history(world: World, seq: int) -> None:
    """What a database administrator could do: change a record and re-hash the chain after it."""
    engine = world.warden.store.engine  # type: ignore[attr-defined]
    with engine.begin() as conn:
        rows = conn.execute(sa.select(audit_events).order_by(audit_events.c.seq)).mappings().all()
        prev = GENESIS_HASH
        for row in rows:
            data = json.loads(row["data"])
            if row["seq"] == seq:
                data = {**data, "decision": "deny"}
            draft = AuditDraft(
                ts=row["ts"],
                type=row["type"],
                actor=row["actor"],
                data=data,
                agent=row["agent"],
                task_id=row["task_id"],
                decision_id=row["decision_id"],
            )
            new_hash = chain_hash(row["seq"], prev, draft)
            conn.execute(
                sa.update(audit_events)
                .where(audit_events.c.seq == row["seq"])
                .values(
                    data=json.dumps(data, sort_keys=True, separators=(",", ":")),
                    prev_hash=prev,
                    hash=new_hash,
                )
            )
            prev = new_hash


def test_rewritten_history_is_caught_by_the_signed_checkpoint(world: World) -> None:
    _activity(world)
    world.warden.checkpoints.create()
    decision = world.audit("authz.decision")[0]
    _rewrite_history(world, decision["seq"])
    body = _verify(world)
    assert body["ok"] is False and body["kind"] == "checkpoint"
    assert "history was rewritten" in body["problem"]


def test_truncation_is_caught(world: World) -> None:
    _activity(world)
    cp = world.warden.checkpoints.create()
    assert cp is not None
    _sql(world, sa.delete(audit_events).where(audit_events.c.seq > cp.seq - 2))
    body = _verify(world)
    assert body["ok"] is False and body["kind"] == "truncated"


def test_checkpoints_exported_outside_catch_a_full_rewrite(world: World, tmp_path: Path) -> None:
    """The DBA also deletes and re-signs nothing (no key): the file anchor still disagrees."""
    anchor = tmp_path / "anchor" / "checkpoints.jsonl"
    world.warden.checkpoints.sinks.append(FileSink(anchor))
    _activity(world)
    world.warden.checkpoints.tick()
    lines = anchor.read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["seq"] == world.warden.store.audit_head()[0]
    world.start_task("bot")
    world.warden.checkpoints.tick()
    assert len(anchor.read_text().splitlines()) == 2  # appended, not rewritten

    decision = world.audit("authz.decision")[0]
    _rewrite_history(world, decision["seq"])
    _sql(world, sa.delete(audit_checkpoints))  # hide the evidence inside the database
    assert _verify(world)["ok"] is True  # the database alone now looks consistent

    data_dir = world.warden.settings.data_dir
    world.warden.writer.flush()
    result = CliRunner().invoke(
        app,
        ["audit", "verify", "--data-dir", str(data_dir), "--checkpoints", str(anchor), "--json"],
    )
    assert result.exit_code == 1, result.output
    body = json.loads(result.stdout)
    assert body["kind"] == "checkpoint" and "history was rewritten" in body["problem"]


def test_cli_verify_reports_the_first_break(world: World, tmp_path: Path) -> None:
    _activity(world)
    world.warden.checkpoints.create()
    data_dir = str(world.warden.settings.data_dir)
    runner = CliRunner()
    ok = runner.invoke(app, ["audit", "verify", "--data-dir", data_dir])
    assert ok.exit_code == 0, ok.output
    assert "1 signed checkpoint(s) verified" in ok.stdout
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(world.client.get("/.well-known/jwks.json").json()))
    decision = world.audit("authz.decision")[0]
    _sql(
        world,
        sa.update(audit_events)
        .where(audit_events.c.seq == decision["seq"])
        .values(actor="someone-else"),
    )
    bad = runner.invoke(app, ["audit", "verify", "--data-dir", data_dir, "--jwks", str(jwks)])
    assert bad.exit_code == 1
    assert f"broken at seq {decision['seq']}" in bad.stdout
    empty_jwks = tmp_path / "none.json"
    empty_jwks.write_text('{"keys": []}')
    _sql(
        world,
        sa.update(audit_events)
        .where(audit_events.c.seq == decision["seq"])
        .values(actor=decision["actor"]),
    )
    unknown = runner.invoke(
        app, ["audit", "verify", "--data-dir", data_dir, "--jwks", str(empty_jwks)]
    )
    assert unknown.exit_code == 1 and "does not verify" in unknown.stdout


def test_checkpoint_line_round_trips(world: World) -> None:
    _activity(world)
    cp = world.warden.checkpoints.create()
    assert cp is not None
    line = json.loads(checkpoint_line(cp))
    assert line == {
        "seq": cp.seq,
        "head_hash": cp.head_hash,
        "ts": cp.ts,
        "kid": cp.kid,
        "jws": cp.jws,
    }


def test_checkpoints_signed_by_a_retired_key_still_verify(world: World) -> None:
    """Retired keys leave the published JWKS, but history they signed must stay verifiable."""
    _activity(world)
    first = world.client.post("/v1/audit/checkpoints", headers=world.admin).json()["checkpoint"]
    old_kid = world.warden.keys.current().kid
    world.warden.key_service.rotate("operator:test")
    world.warden.keys.retire(old_kid, now=world.warden.clock.now())  # type: ignore[attr-defined]
    published = {k["kid"] for k in world.client.get("/.well-known/jwks.json").json()["keys"]}
    assert old_kid not in published
    task = world.start_task("bot")
    world.decide(task["access_token"], task["spiffe_id"], "tickets.read")
    world.client.post("/v1/audit/checkpoints", headers=world.admin)
    result = _verify(world)
    assert result["ok"] is True, result
    assert result["checkpoints"] >= 2
    assert first["seq"] <= world.warden.store.audit_head()[0]
