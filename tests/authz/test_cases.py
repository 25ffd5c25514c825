"""Data-driven policy cases (``warden policies test``)."""

from __future__ import annotations

import json

import pytest

from warden.authz.cases import CaseResult, run_cases
from warden.errors import InvalidParameterError, PolicyError

from .conftest import WriteDir, entity

POLICIES = """
@id("readers") permit(principal in Group::"readers", action == Action::"read", resource);
@id("big-amount") @approval("owner")
forbid(principal, action, resource) when { context.amount > 100 };
@id("watch") @mode("monitor")
forbid(principal, action == Action::"read", resource)
when { context.warden has task && context.warden.task.category == "risky" };
"""

CASES_YAML = """
cases:
  - name: reader reads
    request:
      subject: {type: User, id: alice}
      action: {name: read}
      resource: {type: Doc, id: d1}
      context: {amount: 5}
    expect: allow
    reasons: [readers]
  - name: group from the case
    request:
      subject: {type: User, id: newbie}
      action: {name: read}
      resource: {type: Doc, id: d1}
      context: {amount: 5}
    subject_parents: [{type: Group, id: readers}]
    warden: {task: {category: risky}}
    expect: allow
    monitored: [watch]
  - name: large amounts need approval
    request:
      subject: {type: User, id: alice}
      action: {name: read}
      resource: {type: Doc, id: d1}
      context: {amount: 500, warden: {task: {category: risky}}}
    expect: deny
    reasons: [big-amount]
  - name: wrong expectation
    request:
      subject: {type: User, id: bob}
      action: {name: read}
      resource: {type: Doc, id: d1}
      context: {amount: 1}
    expect: allow
  - name: wrong reason
    request:
      subject: {type: User, id: alice}
      action: {name: read}
      resource: {type: Doc, id: d1}
      context: {amount: 1}
    expect: allow
    reasons: [nope]
  - name: float amount
    request:
      subject: {type: User, id: alice}
      action: {name: read}
      resource: {type: Doc, id: d1}
      context: {amount: 1.5}
    expect: allow
  - name: broken request
    request: {subject: {type: User}}
    expect: deny
  - request: {subject: {type: User, id: a}, action: {name: x}, resource: {type: D, id: d}}
    expect: maybe
"""


@pytest.fixture
def folder(write_dir: WriteDir) -> object:
    return write_dir(
        {
            "p.cedar": POLICIES,
            "entities.json": [
                entity("Group", "readers"),
                entity("User", "alice", parents=[("Group", "readers")]),
            ],
        }
    )


def test_run_cases_yaml(folder: object, tmp_path: object, write_dir: WriteDir) -> None:
    cases = write_dir({"cases.yaml": CASES_YAML}, name="cases") / "cases.yaml"
    results = run_cases(folder, cases)  # type: ignore[arg-type]
    by_name = {r.name: r for r in results}
    assert [r.passed for r in results] == [True, True, True, False, False, False, False, False]
    assert by_name["float amount"].message.startswith(
        "expected allow, got deny; errors: unsupported"
    )
    assert by_name["reader reads"] == CaseResult(
        "reader reads", True, "allow", "allow", ("readers",), ""
    )
    assert by_name["wrong expectation"].message == "expected allow, got deny"
    assert by_name["wrong reason"].message == "reasons missing `nope`"
    assert by_name["broken request"].actual == "error"
    assert "subject.id" in by_name["broken request"].message
    assert by_name["case 7"].message == "`expect` must be `allow` or `deny`"


def test_run_cases_json(folder: object, write_dir: WriteDir) -> None:
    doc = {
        "cases": [
            {
                "name": "n",
                "request": {
                    "subject": {"type": "User", "id": "alice"},
                    "action": {"name": "read"},
                    "resource": {"type": "Doc", "id": "d"},
                    "context": {"amount": 1},
                },
                "expect": "allow",
            }
        ]
    }
    cases = write_dir({"cases.json": json.dumps(doc)}, name="cases") / "cases.json"
    assert [r.passed for r in run_cases(folder, cases)] == [True]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("c.yaml", "cases: {}", "expected an object with a `cases` list"),
        ("c.yaml", "- 1", "expected an object with a `cases` list"),
        ("c.yaml", "cases: [1]", "case 0 must be an object"),
        ("c.yaml", "cases: [", "cannot parse cases"),
        ("c.json", "{", "cannot parse cases"),
    ],
)
def test_bad_cases_files(
    folder: object, write_dir: WriteDir, name: str, text: str, message: str
) -> None:
    cases = write_dir({name: text}, name="cases") / name
    with pytest.raises(InvalidParameterError, match=message):
        run_cases(folder, cases)  # type: ignore[arg-type]


def test_bad_case_fields(folder: object, write_dir: WriteDir) -> None:
    base = {
        "request": {
            "subject": {"type": "User", "id": "a"},
            "action": {"name": "x"},
            "resource": {"type": "D", "id": "d"},
        },
        "expect": "deny",
    }
    doc = {
        "cases": [
            {**base, "warden": 3},
            {**base, "subject_parents": "g"},
            {**base, "subject_parents": [{"type": "G"}]},
        ]
    }
    cases = write_dir({"c.json": json.dumps(doc)}, name="cases") / "c.json"
    results = run_cases(folder, cases)  # type: ignore[arg-type]
    assert [r.actual for r in results] == ["error"] * 3


def test_invalid_policy_folder_raises(write_dir: WriteDir) -> None:
    bad = write_dir({"p.cedar": "permit("})
    cases = write_dir({"c.yaml": "cases: []"}, name="cases") / "c.yaml"
    with pytest.raises(PolicyError):
        run_cases(bad, cases)
    with pytest.raises(InvalidParameterError, match="cannot read cases file"):
        run_cases(write_dir({}), cases.parent / "missing.yaml")
