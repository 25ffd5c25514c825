"""Loading and validating a policy folder."""

from __future__ import annotations

import json

import pytest

from warden.authz.policy_set import load_policy_dir
from warden.errors import PolicyError

from .conftest import WriteDir, entity

SCHEMA = """
entity Group in [Group];
entity User in [Group] { name: String };
entity Doc { owner: User };
action read, write appliesTo { principal: User, resource: Doc, context: { n: Long } };
"""


def test_ids_from_annotation_or_file_and_index(write_dir: WriteDir) -> None:
    folder = write_dir(
        {
            "b.cedar": """
                permit(principal, action, resource);
                @id("named") forbid(principal, action, resource) when { context.x };
                permit(principal, action == Action::"x", resource);
            """,
            "a.cedar": '@approval("owner") forbid(principal, action, resource);',
        }
    )
    lps = load_policy_dir(folder)
    assert lps.policy_ids == ("a:0", "b:0", "named", "b:2")
    named = lps.policies["named"]
    assert (named.effect, named.source, named.index, named.mode) == (
        "forbid",
        "b.cedar",
        1,
        "enforce",
    )
    assert dict(lps.policies["a:0"].annotations) == {"approval": "owner"}
    assert lps.files == ("a.cedar", "b.cedar")


def test_cedar_reasons_are_warden_ids(write_dir: WriteDir) -> None:
    from warden.authz.pdp import PolicyDecisionPoint
    from warden.authz.types import AuthzRequest, EntityRef

    folder = write_dir(
        {
            "p.cedar": (
                "permit(principal, action, resource);\n"
                '@id("x y \\"z\\" :: \\n") permit(principal, action, resource);'
            )
        }
    )
    pdp = PolicyDecisionPoint(load_policy_dir(folder))
    d = pdp.evaluate(
        AuthzRequest(principal=EntityRef("U", "u"), action="a", resource=EntityRef("R", "r"))
    )
    assert set(d.reasons) == {"p:0", 'x y "z" :: \n'}


def test_parse_error_names_the_file(write_dir: WriteDir) -> None:
    folder = write_dir(
        {
            "good.cedar": "permit(principal, action, resource);",
            "bad.cedar": "permit(principal, action",
        }
    )
    with pytest.raises(PolicyError) as err:
        load_policy_dir(folder)
    assert err.value.message.startswith("`bad.cedar`: cannot parse policies:")
    assert "\n" not in err.value.message


@pytest.mark.parametrize(
    ("files", "needle"),
    [
        (
            {
                "a.cedar": '@id("x") permit(principal, action, resource);',
                "b.cedar": '@id("x") permit(principal, action, resource);',
            },
            "`b.cedar`: duplicate policy id `x` (already used in `a.cedar`)",
        ),
        (
            {
                "a.cedar": (
                    '@id("a:1") permit(principal, action, resource);\n'
                    "permit(principal, action, resource);"
                )
            },
            "`a.cedar`: duplicate policy id `a:1`",
        ),
        (
            {"a.cedar": '@id("") permit(principal, action, resource);'},
            "`a.cedar`: policy 0 has an empty `@id`",
        ),
        (
            {"a.cedar": '@id("x`y") permit(principal, action, resource);'},
            "`a.cedar`: policy 0: policy ids cannot contain a backtick",
        ),
        (
            {"a.cedar": '@id("p") @mode("monitor") permit(principal, action, resource);'},
            '`a.cedar`: policy `p`: `@mode("monitor")` is only allowed on forbid policies',
        ),
        ({"s.cedarschema": "entity User", "a.cedar": ""}, "`s.cedarschema`: invalid schema:"),
        (
            {"s.cedarschema": "entity A;", "t.cedarschema.json": "{}", "a.cedar": ""},
            "has more than one schema file: `s.cedarschema`, `t.cedarschema.json`",
        ),
        ({"entities.json": "{not json", "a.cedar": ""}, "`entities.json`: invalid JSON:"),
        (
            {"entities.json": "{}", "a.cedar": ""},
            "`entities.json`: expected a list of cedar entities",
        ),
        (
            {"entities.json": [entity("User", "u"), entity("User", "u", {"a": 1})]},
            "`entities.json`: invalid entities: duplicate entity entry",
        ),
    ],
)
def test_invalid_folders(write_dir: WriteDir, files: dict[str, object], needle: str) -> None:
    folder = write_dir(files)
    with pytest.raises(PolicyError) as err:
        load_policy_dir(folder)
    assert needle in err.value.message
    assert err.value.code == "policy_invalid"


def test_not_utf8(write_dir: WriteDir) -> None:
    folder = write_dir({})
    (folder / "a.cedar").write_bytes(b"permit(principal, action, resource); // \xff")
    with pytest.raises(PolicyError, match=r"`a\.cedar`: the file is not valid UTF-8"):
        load_policy_dir(folder)


def test_missing_folder(tmp_path: object) -> None:
    with pytest.raises(PolicyError, match="does not exist"):
        load_policy_dir("/nonexistent/warden/policies")


def test_schema_validation_failure_rejects_the_set(write_dir: WriteDir) -> None:
    folder = write_dir(
        {
            "schema.cedarschema": SCHEMA,
            "ok.cedar": (
                'permit(principal, action == Action::"read", resource)\n'
                "when { resource.owner == principal };"
            ),
            "bad.cedar": (
                '@id("typo") permit(principal, action == Action::"read", resource)\n'
                'when { principal.nmae == "x" };'
            ),
        }
    )
    with pytest.raises(PolicyError) as err:
        load_policy_dir(folder)
    assert err.value.message.startswith(
        "`bad.cedar`: policy `typo` does not validate against the schema:"
    )
    assert "nmae" in err.value.message


def test_schema_passes_and_adds_action_entities(write_dir: WriteDir) -> None:
    folder = write_dir(
        {
            "schema.cedarschema": SCHEMA,
            "ok.cedar": (
                'permit(principal, action == Action::"read", resource)\nwhen { context.n > 1 };'
            ),
            "entities.json": [
                entity("User", "u", {"name": "u"}, [("Group", "g")]),
                entity("Group", "g"),
            ],
        }
    )
    lps = load_policy_dir(folder)
    assert set(lps.action_names()) == {"read", "write"}
    assert lps.schema is not None


def test_json_schema_is_accepted(write_dir: WriteDir) -> None:
    schema = {
        "": {
            "entityTypes": {"User": {}},
            "actions": {
                "read": {"appliesTo": {"principalTypes": ["User"], "resourceTypes": ["User"]}}
            },
        }
    }
    folder = write_dir(
        {
            "s.cedarschema.json": json.dumps(schema),
            "a.cedar": 'permit(principal, action == Action::"read", resource);',
        }
    )
    assert load_policy_dir(folder).policy_ids == ("a:0",)
    bad = write_dir(
        {
            "s.cedarschema.json": json.dumps(schema),
            "a.cedar": 'permit(principal, action == Action::"nope", resource);',
        }
    )
    with pytest.raises(PolicyError, match="does not validate against the schema"):
        load_policy_dir(bad)


def test_entities_are_validated_against_the_schema(write_dir: WriteDir) -> None:
    folder = write_dir(
        {
            "schema.cedarschema": SCHEMA,
            "entities.json": [
                entity("User", "ok", {"name": "x"}),
                entity("User", "bad", {"name": 42}),
            ],
        }
    )
    with pytest.raises(PolicyError) as err:
        load_policy_dir(folder)
    assert err.value.message.startswith('`entities.json`: invalid entities (entity `User::"bad"`):')


def test_revision_tracks_names_and_contents(write_dir: WriteDir) -> None:
    files = {"a.cedar": "permit(principal, action, resource);"}
    r1 = load_policy_dir(write_dir(files)).revision
    r2 = load_policy_dir(write_dir(files)).revision
    r3 = load_policy_dir(write_dir({"b.cedar": files["a.cedar"]})).revision
    r4 = load_policy_dir(write_dir({"a.cedar": files["a.cedar"] + " "})).revision
    assert r1 == r2
    assert len({r1, r3, r4}) == 3
    assert len(r1) == 64
    lps = load_policy_dir(write_dir(files))
    assert lps.short_revision == r1[:16]


def test_templates_are_listed_but_inert(write_dir: WriteDir) -> None:
    from warden.authz.pdp import PolicyDecisionPoint
    from warden.authz.types import AuthzRequest, EntityRef

    folder = write_dir({"t.cedar": '@id("tpl") permit(principal == ?principal, action, resource);'})
    lps = load_policy_dir(folder)
    assert lps.policies["tpl"].template
    req = AuthzRequest(principal=EntityRef("U", "u"), action="a", resource=EntityRef("R", "r"))
    assert not PolicyDecisionPoint(lps).evaluate(req).allowed


def test_empty_folder_denies_everything(write_dir: WriteDir) -> None:
    from warden.authz.pdp import PolicyDecisionPoint
    from warden.authz.types import AuthzRequest, EntityRef

    lps = load_policy_dir(write_dir({}))
    assert lps.policy_ids == ()
    req = AuthzRequest(principal=EntityRef("U", "u"), action="a", resource=EntityRef("R", "r"))
    decision = PolicyDecisionPoint(lps).evaluate(req)
    assert (decision.allowed, decision.reasons) == (False, ())
