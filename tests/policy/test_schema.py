"""Item 1: the Cedar schema of Warden's model, generated from the PDP's definitions, checked
by the official Cedar build, and enforced (strict validation) when policies load."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cedarpy
import pytest
from typer.testing import CliRunner

from tests.api.conftest import World
from warden.authz.model import AGENT_ATTRIBUTES
from warden.authz.policy_set import load_policy_dir
from warden.authz.schema import effective_schema, render_json, render_text
from warden.cli.main import app
from warden.errors import PolicyError

from .conftest import official_validate

pytestmark = pytest.mark.policy

EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "warden" / "examples" / "policies"


def _policies(folder: Path) -> str:
    return "\n".join(p.read_text() for p in sorted(folder.glob("*.cedar")))


def test_schema_command_prints_warden_model() -> None:
    result = CliRunner().invoke(app, ["policies", "schema"])
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert text == render_text()
    for needle in (
        "entity Agent in [Group]",
        '"risk_tier": String',
        "type WardenFacts = {",
        '"approval": WardenApproval',
        "entity Route",
        'action "GET", "HEAD", "POST"',
    ):
        assert needle in text
    cedarpy.Schema.from_str(text)  # parses in the engine Warden runs
    as_json = CliRunner().invoke(app, ["policies", "schema", "--json"])
    assert json.loads(as_json.stdout) == render_json()


def test_official_cedar_accepts_the_schema_and_the_examples() -> None:
    for schema in (render_text(), render_json()):
        answer = official_validate(
            schema, 'permit(principal is Agent, action == Action::"GET", resource);'
        )
        assert answer["schema"] == {"type": "success"}, answer
        assert answer["validation"]["type"] == "success", answer
        assert answer["validation"]["validationErrors"] == [], answer
    # the examples, against what Warden validates them with (its schema + their tool actions)
    lps = load_policy_dir(EXAMPLES)
    answer = official_validate(lps.schema_text, _policies(EXAMPLES))
    assert answer["validation"]["validationErrors"] == [], answer


def test_official_cedar_agrees_on_a_typo_in_context_warden() -> None:
    policy = (
        'forbid(principal, action == Action::"email.send", resource)\n'
        'when { context.warden.task.categroy == "read-only" };'
    )
    eff = effective_schema(None, set(), {"email.send"})
    answer = official_validate(eff.text, policy)
    assert answer["validation"]["validationErrors"], answer
    assert "categroy" in json.dumps(answer["validation"]["validationErrors"])


def test_a_real_agent_decision_conforms_to_the_schema(world: World) -> None:
    """Drift check: what the decision path sends Cedar is what the schema says, checked by
    Cedar itself (request and entities validated against the schema)."""
    # a policy reads behaviour facts, so the decision path encodes them (it skips them otherwise)
    (world.policies / "facts.cedar").write_text(
        '@id("bursts") forbid(principal, action == Action::"facts.check", resource)\n'
        "when { context.warden.behaviour.calls_in_window > 1000 };"
    )
    world.warden.reload_policies()
    world.register()
    task = world.start_task(scope="tickets.read email.send facts.check")
    world.decide(
        task["access_token"], task["spiffe_id"], "email.send", arguments={"to": "a@example.com"}
    )
    record = next(r for r in world.audit("authz.decision") if r["data"].get("cedar"))
    cedar = record["data"]["cedar"]
    assert set(cedar["principal_attrs"]) == {a.name for a in AGENT_ATTRIBUTES.attrs}
    assert cedar["principal"]["type"] == "Agent"
    entities = [
        {
            "uid": cedar["principal"],
            "attrs": cedar["principal_attrs"],
            "parents": [{"type": t, "id": i} for t, i in cedar.get("parents", [])],
        },
        *(
            {"uid": {"type": t, "id": i}, "attrs": {}, "parents": []}
            for t, i in cedar.get("parents", [])
        ),
        {"uid": cedar["resource"], "attrs": {}, "parents": []},
    ]
    schema = effective_schema(None, set(), {cedar["action"]}).text
    # `arguments` is typed per tool by the deployment's own schema; the rest is Warden's
    cedar["context"].pop("arguments")
    request = {
        "principal": f'Agent::"{cedar["principal"]["id"]}"',
        "action": f'Action::"{cedar["action"]}"',
        "resource": f'Tool::"{cedar["resource"]["id"]}"',
        "context": cedar["context"],
    }
    result = cedarpy.is_authorized(
        request, "permit(principal, action, resource);", entities, schema=schema
    )
    assert result.allowed, (result.diagnostics.errors, cedar["context"])


def _folder(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / "p"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def test_a_typo_in_wardens_model_is_rejected_by_default(tmp_path: Path) -> None:
    folder = _folder(
        tmp_path,
        {
            "a.cedar": (
                '@id("ok") permit(principal in Group::"support", '
                'action == Action::"tickets.read", resource);\n'
                '@id("typo")\n'
                'forbid(principal, action == Action::"email.send", resource)\n'
                '  when { context.warden.task.categroy == "read-only" };\n'
            )
        },
    )
    with pytest.raises(PolicyError) as err:
        load_policy_dir(folder)
    (problem,) = err.value.detail["errors"]
    assert problem["policy"] == "typo"
    assert problem["kind"] == "validation"
    assert (problem["file"], problem["line"], problem["column"]) == ("a.cedar", 4, 30)
    assert "categroy" in problem["message"]
    assert problem["snippet"].splitlines()[1].strip() == "^" * len("categroy")


def test_agent_attributes_are_checked_when_the_scope_says_agent(tmp_path: Path) -> None:
    folder = _folder(
        tmp_path,
        {
            "a.cedar": (
                "permit(principal is Agent, action, resource) "
                'when { principal.risk_teir == "low" };'
            )
        },
    )
    with pytest.raises(PolicyError, match="risk_teir"):
        load_policy_dir(folder)


def test_custom_types_and_pep_context_stay_untyped_without_a_user_schema(tmp_path: Path) -> None:
    folder = _folder(
        tmp_path,
        {
            "a.cedar": (
                'permit(principal in role::"admin", action == Action::"can_read", resource) '
                "when { context.amount > 1 && resource.owner == principal.email };"
            )
        },
    )
    lps = load_policy_dir(folder)
    assert any("can_read" in n for n in lps.schema_notes)
    assert "entity role;" in lps.schema_text


USER_SCHEMA = """
// the deployment's own tool, with typed arguments, on Warden's types
action "payments.refund" appliesTo {
  principal: [Agent],
  resource: [Tool],
  context: { warden: WardenFacts, action: {}, arguments: { amount: Long, currency: String } }
};
"""


def test_a_user_schema_extends_wardens(tmp_path: Path) -> None:
    ok = _folder(
        tmp_path,
        {
            "schema.cedarschema": USER_SCHEMA,
            "a.cedar": (
                '@id("small-refunds") permit(principal in Group::"support", '
                'action == Action::"payments.refund", resource)\n'
                "when { context.arguments.amount < 500 && "
                'context.warden.task.category == "support" };'
            ),
        },
    )
    lps = load_policy_dir(ok)
    assert "payments.refund" in lps.schema_text and "type WardenFacts" in lps.schema_text
    answer = official_validate(lps.schema_text, _policies(ok))
    assert answer["validation"]["validationErrors"] == [], answer
    (ok / "a.cedar").write_text(
        'permit(principal, action == Action::"payments.refund", resource)\n'
        'when { context.arguments.amount like "5*" };'
    )
    with pytest.raises(PolicyError) as err:
        load_policy_dir(ok)
    (problem,) = err.value.detail["errors"]
    assert (problem["line"], problem["kind"], problem["policy"]) == (1, "validation", "a:0")
    # strict: with a user schema, an action nobody declares is an error
    (ok / "a.cedar").write_text('permit(principal, action == Action::"payments.refnud", resource);')
    with pytest.raises(PolicyError, match=r"payments\.refnud"):
        load_policy_dir(ok)


def test_the_served_examples_validate(tmp_path: Path) -> None:
    target = tmp_path / "examples"
    shutil.copytree(EXAMPLES, target)
    assert load_policy_dir(target).policy_ids
