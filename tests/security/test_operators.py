"""Issue 10 items 5 and 7: operator tokens expire, rotate and can be disabled — refused on every
replica — and refused management calls are audited, aggregated, and reported."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.cli.conftest import runner, server
from warden.bootstrap import Warden
from warden.cli.main import app as cli
from warden.config import Settings
from warden.service.operators import CACHE_TTL, hash_token

from .conftest import EdgeWorld, make_edge_world

pytestmark = pytest.mark.security

__all__ = ["runner", "server"]  # fixtures for the CLI test


def _create(edge: EdgeWorld, name: str, role: str = "auditor") -> tuple[dict[str, Any], str]:
    r = edge.client.post("/v1/operators", json={"name": name, "role": role}, headers=edge.admin)
    assert r.status_code == 201, r.text
    body = r.json()
    return body, body["token"]


def _as(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_tokens_expire_after_the_configured_ttl(tmp_path: Path) -> None:
    for edge in make_edge_world(tmp_path, operator_token_ttl=3600.0):
        op, token = _create(edge, "carol")
        assert op["expires_at"] == pytest.approx(edge.clock.now() + 3600.0)
        assert edge.client.get("/v1/agents", headers=_as(token)).status_code == 200
        edge.clock.advance(3601)
        r = edge.client.get("/v1/agents", headers=_as(token))
        assert r.status_code == 401
        assert "expired" in r.json()["error"]["message"]


def test_the_default_expiry_is_thirty_days(edge: EdgeWorld) -> None:
    op, _ = _create(edge, "carol")
    assert op["expires_at"] - edge.clock.now() == pytest.approx(30 * 86400, abs=5)


def test_rotate_replaces_the_token_at_once(edge: EdgeWorld) -> None:
    _, old = _create(edge, "carol")
    r = edge.client.post("/v1/operators/carol/rotate", headers=edge.admin)
    assert r.status_code == 200, r.text
    new = r.json()["token"]
    assert new != old
    assert edge.client.get("/v1/agents", headers=_as(old)).status_code == 401
    assert edge.client.get("/v1/agents", headers=_as(new)).status_code == 200
    assert [rec["data"]["name"] for rec in edge.audit("operator.rotated")] == ["carol"]


def test_disable_refuses_every_later_call(edge: EdgeWorld) -> None:
    _, token = _create(edge, "carol")
    assert edge.client.get("/v1/agents", headers=_as(token)).status_code == 200  # now cached
    r = edge.client.post("/v1/operators/carol/disable", json={"reason": "left"}, headers=edge.admin)
    assert r.status_code == 200 and r.json()["disabled"] is True
    assert edge.client.get("/v1/agents", headers=_as(token)).status_code == 401
    assert edge.client.post("/v1/operators/carol/disable", headers=edge.admin).status_code == 409
    assert edge.client.post("/v1/operators/carol/rotate", headers=edge.admin).status_code == 409
    disabled = edge.audit("operator.disabled")
    assert disabled and disabled[0]["data"]["reason"] == "left"


def test_only_admins_manage_operators_and_names_are_checked(edge: EdgeWorld) -> None:
    _, token = _create(edge, "carol")
    for action in ("disable", "rotate"):
        assert (
            edge.client.post(f"/v1/operators/carol/{action}", headers=_as(token)).status_code == 403
        )
        assert (
            edge.client.post(f"/v1/operators/nobody/{action}", headers=edge.admin).status_code
            == 404
        )
        assert edge.client.post(f"/v1/operators/carol/{action}").status_code == 401
    r = edge.client.post("/v1/operators", json={"name": "carol"}, headers=edge.admin)
    assert r.status_code == 409  # names are unique: they are how operators are managed


def test_the_last_admin_cannot_be_disabled(edge: EdgeWorld) -> None:
    r = edge.client.post("/v1/operators/bootstrap-admin/disable", headers=edge.admin)
    assert r.status_code == 409
    _create(edge, "root2", "admin")
    r = edge.client.post("/v1/operators/bootstrap-admin/disable", headers=edge.admin)
    assert r.status_code == 200


def test_a_second_replica_refuses_a_disabled_operator(edge: EdgeWorld, tmp_path: Path) -> None:
    """Two Warden processes over one database: a disable on one is refused on the other,
    from the change feed, and at worst after ``CACHE_TTL`` when a notification is lost."""
    _, token = _create(edge, "carol")
    other_settings = Settings(
        data_dir=tmp_path / "replica-b",
        database_url=edge.warden.settings.database_url or _sqlite_url(edge),
        policies_dir=edge.policies,
        trust_domains=edge.warden.settings.trust_domains,
        serves_api=False,
        kek_file=edge.warden.settings.effective_kek_file,
    )
    b = Warden(other_settings, clock=edge.clock)
    try:
        assert b.operators.authenticate(token).name == "carol"  # cached on b
        edge.client.post("/v1/operators/carol/disable", headers=edge.admin)
        # the change feed: b applies `operator.changed` as a peer would
        from warden.core.model import Change

        b.replication.apply(Change("operator.changed", {"operator": "x"}, "other-replica"))
        with pytest.raises(Exception, match="disabled"):
            b.operators.authenticate(token)
        # a lost notification: b's cached view of a rotated token lasts at most CACHE_TTL
        _, fresh = _create(edge, "dave")
        assert b.operators.authenticate(fresh).name == "dave"
        edge.client.post("/v1/operators/dave/disable", headers=edge.admin)
        edge.clock.advance(CACHE_TTL + 0.1)
        with pytest.raises(Exception, match="disabled"):
            b.operators.authenticate(fresh)
    finally:
        b.close()


def _sqlite_url(edge: EdgeWorld) -> str:
    return f"sqlite:///{edge.warden.settings.data_dir / 'warden.db'}"


def test_stored_tokens_are_hashes_only(edge: EdgeWorld) -> None:
    _, token = _create(edge, "carol")
    stored = edge.warden.store.fetch_operator_by_token_hash(hash_token(token))
    assert stored.name == "carol" and token not in str(stored)


@pytest.mark.slow
def test_cli_rotate_and_disable_against_a_real_server(runner: CliRunner, server: Any) -> None:
    import httpx

    env = {"WARDEN_URL": server.url, "WARDEN_DATA_DIR": str(server.data_dir)}

    def warden(*args: str) -> str:
        result = runner.invoke(cli, list(args), env=env)
        assert result.exit_code == 0, result.output
        return result.stdout

    created = json.loads(warden("operators", "create", "carol", "--role", "auditor", "--json"))
    rotated = json.loads(warden("operators", "rotate", "carol", "--json"))
    assert rotated["token"] != created["token"]
    url = f"{server.url}/v1/agents"
    assert httpx.get(url, headers=_as(created["token"])).status_code == 401
    assert httpx.get(url, headers=_as(rotated["token"])).status_code == 200
    assert "disabled carol" in warden("operators", "disable", "carol", "--reason", "left")
    assert httpx.get(url, headers=_as(rotated["token"])).status_code == 401
    listed = json.loads(warden("operators", "list", "--json"))
    assert {o["name"]: o["disabled"] for o in listed["operators"]}["carol"] is True


# -- item 7: refused management calls ------------------------------------------------------


def test_refused_management_calls_are_audited_and_aggregated(edge: EdgeWorld) -> None:
    _, auditor = _create(edge, "carol")
    for _ in range(50):
        edge.client.get("/v1/agents")  # no token
    for _ in range(30):
        edge.client.post("/v1/operators", json={"name": "x"}, headers=_as(auditor))  # wrong role
    edge.client.get("/v1/agents", headers=_as("wdn_op_forged-forged-forged"))
    edge.client.get("/v1/agents", headers=_as("eyJhbGciOiJFZERTQSJ9.e30.sig"))  # not an operator
    edge.warden.refusals.flush()
    records = edge.audit("operator.auth_refused")
    totals: dict[str, int] = {}
    for rec in records:
        totals[rec["data"]["reason"]] = totals.get(rec["data"]["reason"], 0) + rec["data"]["count"]
    assert totals["unauthenticated:missing"] == 50
    assert totals["forbidden:wrong_role"] == 30
    assert totals["unauthenticated:unknown"] == 1
    assert totals["unauthenticated:not_an_operator_token"] == 1
    assert len(records) <= 8  # a flood is a handful of records, not one per call
    assert all(rec["data"]["source"] for rec in records)


def test_refusals_show_in_the_controls_report(edge: EdgeWorld) -> None:
    for _ in range(5):
        edge.client.get("/v1/agents")
    edge.warden.refusals.flush()
    edge.clock.advance(1)  # the report covers records strictly before now
    r = edge.client.get("/v1/reports/controls", headers=edge.admin)
    assert r.status_code == 200, r.text
    controls = {c["id"]: c for c in r.json()["controls"]}
    measured = controls["CP-AUTHZ-01"]["measured"]
    assert measured["refused_management_calls"] == 5
    assert measured["refused_by_reason"] == {"unauthenticated:missing": 5}
