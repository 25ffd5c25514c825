"""Item 2: every parse or validation error names file:line:col with the offending snippet —
in the CLI, in the API (structured), and in the audit record of a rejected reload."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.api.conftest import World
from warden.authz.policy_set import load_policy_dir
from warden.cli.main import app
from warden.errors import PolicyError

pytestmark = pytest.mark.policy

GOOD = 'permit(principal, action == Action::"a", resource);\n'
BAD_TOKEN = (
    "// two fine policies and a broken one\n"
    'permit(principal, action == Action::"a", resource);\n'
    '@id("broken")\n'
    'permit(principal, action == Action::"b", resource)\n'
    "when { context.x === 1 };\n"
    'permit(principal, action == Action::"c", resource);\n'
)


def _folder(tmp_path: Path, files: dict[str, str], name: str = "p") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    for file, text in files.items():
        (folder / file).write_text(text)
    return folder


def _errors(folder: Path) -> list[dict[str, object]]:
    with pytest.raises(PolicyError) as err:
        load_policy_dir(folder)
    assert err.value.code == "policy_invalid"
    errors: list[dict[str, object]] = err.value.detail["errors"]
    return errors


def test_a_parse_error_is_pinned_to_its_token(tmp_path: Path) -> None:
    (problem,) = _errors(_folder(tmp_path, {"a.cedar": BAD_TOKEN}))
    assert (problem["file"], problem["line"], problem["column"]) == ("a.cedar", 5, 20)
    assert problem["kind"] == "parse"
    assert "unexpected token `=`" in str(problem["message"])
    line, caret = str(problem["snippet"]).splitlines()
    assert line == "when { context.x === 1 };"
    assert caret == " " * 19 + "^"


@pytest.mark.parametrize(
    ("text", "where", "needle"),
    [
        (
            "permit(principal, action, resource)\nwhen { foo(1) };\n",
            (2, 8),
            "`foo` is not a valid function",
        ),
        (
            'permit(principal, action, resource)\nwhen { context.s == "abc };\n',
            (2, 21),
            "invalid token",
        ),
        ("permit(principal, action, resource)", (1, 36), "is a `;` missing"),
        ("permit(principal, action, resource);\npermit(principal, actoin, resource);", (2, 19), ""),
        ('@id("a") @id("b") permit(principal, action, resource);', (1, 11), "duplicate annotation"),
    ],
)
def test_every_kind_of_parse_error_has_a_position(
    tmp_path: Path, text: str, where: tuple[int, int], needle: str
) -> None:
    (problem,) = _errors(_folder(tmp_path, {"x.cedar": text}))
    assert (problem["line"], problem["column"]) == where, problem
    assert needle in str(problem["message"])


def test_every_bad_policy_of_every_file_is_reported(tmp_path: Path) -> None:
    folder = _folder(
        tmp_path,
        {
            "a.cedar": BAD_TOKEN + "permit(principal, action, resource) when { 1 +* 2 };\n",
            "b.cedar": GOOD + '@id("x") @mode("monitor") permit(principal, action, resource);\n',
            "c.cedar": GOOD,
        },
    )
    errors = _errors(folder)
    assert [(e["file"], e["line"]) for e in errors] == [
        ("a.cedar", 5),
        ("a.cedar", 7),
        ("b.cedar", 2),
    ]
    assert "only allowed on forbid" in str(errors[2]["message"])


def test_schema_and_entity_errors_are_located(tmp_path: Path) -> None:
    (schema_problem,) = _errors(
        _folder(
            tmp_path,
            {"s.cedarschema": "entity User;\nentity Doc { owner: Usr };\n", "a.cedar": GOOD},
            "s",
        )
    )
    assert (schema_problem["file"], schema_problem["line"], schema_problem["kind"]) == (
        "s.cedarschema",
        2,
        "schema",
    )
    (json_problem,) = _errors(_folder(tmp_path, {"entities.json": '[\n  {"uid": }\n]'}, "e"))
    assert (json_problem["file"], json_problem["line"], json_problem["column"]) == (
        "entities.json",
        2,
        11,
    )


def test_the_cli_prints_file_line_col_and_the_snippet(tmp_path: Path) -> None:
    folder = _folder(tmp_path, {"a.cedar": BAD_TOKEN})
    result = CliRunner().invoke(app, ["policies", "validate", str(folder)])
    assert result.exit_code == 1
    assert "a.cedar:5:20: unexpected token `=`" in result.stderr
    assert "when { context.x === 1 };" in result.stderr
    as_json = CliRunner().invoke(app, ["policies", "validate", str(folder), "--json"])
    assert as_json.exit_code == 1
    assert '"line": 5' in as_json.stdout and '"column": 20' in as_json.stdout


def test_the_api_returns_structured_errors(world: World) -> None:
    r = world.client.post(
        "/v1/policies/validate", json={"files": {"a.cedar": BAD_TOKEN}}, headers=world.admin
    )
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "policy_invalid"
    (problem,) = error["details"]["errors"]
    assert problem == {**problem, "file": "a.cedar", "line": 5, "column": 20, "kind": "parse"}
    assert problem["snippet"].startswith("when { context.x === 1 };")
    ok = world.client.post(
        "/v1/policies/validate", json={"files": {"a.cedar": GOOD}}, headers=world.admin
    )
    assert ok.status_code == 200 and ok.json()["ok"] is True
    bad_name = world.client.post(
        "/v1/policies/validate", json={"files": {"../a.cedar": GOOD}}, headers=world.admin
    )
    assert bad_name.status_code == 400


def test_a_rejected_reload_records_located_errors(world: World) -> None:
    serving = world.warden.pdp.revision
    (world.policies / "zz.cedar").write_text(BAD_TOKEN)
    r = world.client.post("/v1/policies/reload", headers=world.admin)
    assert r.status_code == 422
    assert r.json()["error"]["details"]["errors"][0]["line"] == 5
    assert world.warden.pdp.revision == serving  # the last good set keeps serving
    (record,) = world.audit("policy.rejected")
    (problem,) = record["data"]["errors"]
    assert (problem["file"], problem["line"], problem["column"]) == ("zz.cedar", 5, 20)
    assert record["data"]["serving_revision"] == serving
    shown = world.client.get("/v1/policies", headers=world.admin).json()
    assert shown["last_errors"][0]["snippet"] == problem["snippet"]
