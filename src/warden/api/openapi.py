"""The OpenAPI document as the API really behaves.

The routes read their bodies themselves (one error model, exact limits), so FastAPI cannot see
the bodies or the status codes: this module adds them. Every operation that takes a body gets
its ``requestBody``; created resources answer 201; the framework's 422 (never sent: bad input
is a 400 with an ``ErrorV1`` body) is replaced by the errors Warden does send.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from warden.core.reasons import CODES

Schema = dict[str, Any]


def _obj(required: tuple[str, ...] = (), **props: Schema) -> Schema:
    out: Schema = {"type": "object", "properties": props}
    if required:
        out["required"] = list(required)
    return out


STR: Schema = {"type": "string"}
STRS: Schema = {"type": "array", "items": STR}
NUM_OR_DURATION: Schema = {"oneOf": [{"type": "number"}, {"type": "string"}]}
REASON = _obj(reason={"type": "string", "maxLength": 1000, "description": "recorded in the audit"})
ENTITY = _obj(("type", "id"), type=STR, id=STR, properties={"type": "object"})
EVALUATION = _obj(
    ("subject", "action", "resource"),
    subject=ENTITY,
    action=_obj(("name",), name=STR, properties={"type": "object"}),
    resource=ENTITY,
    context={"type": "object"},
)
AGENT = _obj(
    ("name", "owner", "purpose"),
    name=STR,
    owner={"type": "string", "description": "the accountable human"},
    purpose=STR,
    risk_tier={"type": "string", "enum": ["low", "medium", "high", "critical"]},
    entitlements=STRS,
    groups=STRS,
    spiffe_id=STR,
    baseline={"type": "object", "description": "declared behaviour (docs/approvals.md)"},
)
TOKEN_FORM = _obj(
    ("grant_type",),
    grant_type=STR,
    subject_token=STR,
    subject_token_type=STR,
    actor_token=STR,
    actor_token_type=STR,
    scope=STR,
    audience=STR,
    resource=STR,
    authorization_details={"type": "string", "description": "JSON: agent_task purpose"},
    refresh_token=STR,
)

JSON_BODIES: dict[tuple[str, str], Schema] = {
    ("post", "/access/v1/evaluation"): EVALUATION,
    ("post", "/access/v1/evaluations"): _obj(
        evaluations={"type": "array", "items": EVALUATION},
        subject=ENTITY,
        action={"type": "object"},
        resource=ENTITY,
        context={"type": "object"},
        options={"type": "object"},
    ),
    ("post", "/access/v1/search/subject"): EVALUATION,
    ("post", "/access/v1/search/resource"): EVALUATION,
    ("post", "/access/v1/search/action"): EVALUATION,
    ("post", "/v1/agents"): AGENT,
    # integrity (issue 14): a manifest declaration, tool pins, what a proxy observed
    ("put", "/v1/agents/{name}/manifest"): _obj(
        ("signers",),
        signers={"type": "array", "items": _obj(("public_key",), keyid=STR, public_key=STR)},
        models={"type": "array"},
        system_prompts=STRS,
        tool_manifests=STRS,
        code=STRS,
        images=STRS,
    ),
    ("post", "/v1/mcp/pins"): _obj(
        ("server", "tools"), server=STR, tools={"type": "array"}, only=STRS
    ),
    ("post", "/v1/mcp/observe"): _obj(
        ("server", "tools"), server=STR, tools={"type": "array"}, mode=STR, agent=STR
    ),
    ("patch", "/v1/agents/{name}"): {**AGENT, "required": []},
    ("post", "/v1/agents/{name}/suspend"): REASON,
    ("post", "/v1/agents/{name}/reactivate"): REASON,
    ("post", "/v1/agents/{name}/decommission"): REASON,
    ("post", "/v1/agents/{name}/entries"): _obj(("selectors",), selectors=STRS, description=STR),
    ("post", "/v1/agents/{name}/join-tokens"): _obj(ttl=NUM_OR_DURATION),
    ("post", "/v1/tasks/{task_id}/complete"): REASON,
    ("post", "/v1/tasks/{task_id}/fail"): REASON,
    ("post", "/v1/tasks/{task_id}/revoke"): REASON,
    ("post", "/v1/tasks/{task_id}/leases"): _obj(
        kind={"type": "string", "enum": ["postgres", "token"]},
        target=STR,
        audience=STR,
        ttl=NUM_OR_DURATION,
    ),
    ("put", "/v1/policies/modes"): _obj(
        ("kind", "value", "mode"),
        kind={"type": "string", "enum": ["agent", "risk_tier"]},
        value=STR,
        mode={"type": "string", "enum": ["enforce", "monitor", "default"]},
    ),
    ("post", "/v1/policies/validate"): _obj(
        ("files",),
        files={"type": "object", "additionalProperties": STR, "description": "name -> text"},
    ),
    ("post", "/v1/policies/replay"): _obj(
        ("files",),
        files={"type": "object", "additionalProperties": STR, "description": "name -> text"},
        since=NUM_OR_DURATION,
        until=NUM_OR_DURATION,
        agent=STR,
        limit={"type": "integer", "minimum": 0},
        examples={"type": "integer", "minimum": 0},
        thresholds={"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}},
    ),
    ("post", "/v1/owners"): _obj(("id",), id=STR, display_name=STR),
    ("post", "/v1/owners/sync"): _obj(
        ("humans",), humans={"type": "array", "items": {"type": "object"}}, full={"type": "boolean"}
    ),
    ("post", "/v1/owners/{human_id}/deactivate"): REASON,
    ("post", "/v1/owners/{human_id}/reactivate"): REASON,
    ("patch", "/v1/agents/{name}/governance"): _obj(
        ("end_date",), end_date={"type": "number", "description": "epoch seconds; null clears it"}
    ),
    ("post", "/v1/agents/{name}/owners"): _obj(("owners",), owners=STRS, reason=STR),
    ("post", "/v1/certifications"): _obj(
        every=NUM_OR_DURATION,
        window=NUM_OR_DURATION,
        on_timeout={"type": "string", "enum": ["reduce", "suspend"]},
    ),
    ("post", "/v1/certifications/reviews/{review_id}/{decision}"): _obj(entitlements=STRS),
    ("post", "/v1/approvals/{request_id}/approve"): _obj(
        reason={"type": "string", "maxLength": 1000},
        digest={"type": "string", "description": "the digest the approver saw"},
    ),
    ("post", "/v1/approvals/{request_id}/deny"): _obj(
        ("reason",), reason={"type": "string", "maxLength": 1000}, digest=STR
    ),
    ("put", "/v1/agents/{name}/baseline"): {"type": "object"},
    ("post", "/v1/operators"): _obj(
        ("name",),
        name=STR,
        role={"type": "string", "enum": ["admin", "approver", "auditor", "pep"]},
        human={"type": "string", "description": "the person this account acts as"},
    ),
    ("post", "/v1/operators/{name}/disable"): REASON,
    ("post", "/v1/operators/{name}/rotate"): {"type": "object"},
}
FORM_BODIES: dict[tuple[str, str], Schema] = {
    ("post", "/oauth2/token"): TOKEN_FORM,
    ("post", "/oauth2/introspect"): _obj(("token",), token=STR, token_type_hint=STR),
    ("post", "/oauth2/revoke"): _obj(("token",), token=STR, token_type_hint=STR),
}
CREATED: dict[tuple[str, str], str] = {
    ("post", "/v1/agents"): "the agent was registered",
    ("post", "/v1/agents/{name}/entries"): "the registration entry was added",
    ("post", "/v1/owners"): "the owner was added",
    ("post", "/v1/certifications"): "the campaign was started",
    ("post", "/v1/operators"): "the operator was created (the token is shown once)",
    ("post", "/v1/tasks/{task_id}/leases"): "the lease was minted",
    ("post", "/v1/audit/checkpoints"): "a checkpoint was written (200: none was needed)",
}
ERRORS = {
    "400": "invalid input (`invalid_parameter`, `malformed_request`, ...)",
    "401": "not authenticated (`unauthenticated`, `token_invalid`)",
    "403": "not allowed (`forbidden`, `csrf_failed`, ...)",
    "404": "not found (`not_found`)",
    "409": "conflict with the current state (`conflict`, `approval_closed`, ...)",
}
DECISION_V1: Schema = {
    **_obj(
        ("decision", "context"),
        decision={"type": "boolean"},
        context=_obj(
            ("decision_id", "reason", "reasons"),
            decision_id={
                "type": ["string", "null"],
                "description": "the audit record's key (`warden why`); null for a malformed batch "
                "item, which is never decided",
            },
            reason={
                "type": "string",
                "description": "a stable code: `allowed`, `policy` (Cedar denied), a refusal "
                "before policy or a step-up; docs/enforcement.md lists them",
                "examples": list(CODES),
            },
            reasons={
                **STRS,
                "description": "the determining policy ids; [] for a refusal and a default deny",
            },
            monitor=_obj(
                by=STR,
                would_deny={"type": "boolean"},
                policies=STRS,
                reason={"type": "string", "description": "what enforcement would have answered"},
            ),
            approval_request={"type": "object", "description": "the approval task handle"},
        ),
    ),
    "examples": [
        {
            "decision": False,
            "context": {"decision_id": "dec_…", "reason": "policy", "reasons": ["no-purge"]},
        },
        {
            "decision": False,
            "context": {"decision_id": "dec_…", "reason": "out_of_scope", "reasons": []},
        },
    ],
}
DECISION_REF: Schema = {"$ref": "#/components/schemas/DecisionV1"}
DECISIONS: dict[tuple[str, str], Schema] = {
    ("post", "/access/v1/evaluation"): DECISION_REF,
    ("post", "/access/v1/evaluations"): {
        "oneOf": [
            DECISION_REF,
            _obj(("evaluations",), evaluations={"type": "array", "items": DECISION_REF}),
        ]
    },
}
ERROR_V1: Schema = _obj(
    ("error",),
    error=_obj(("code", "message"), code=STR, message=STR, details={"type": "object"}),
    request_id=STR,
)


def openapi_schema(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["ErrorV1"] = ERROR_V1
    components["DecisionV1"] = DECISION_V1
    error_ref = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorV1"}}}
    for path, ops in schema.get("paths", {}).items():
        for method, op in ops.items():
            key = (method, path)
            responses = op.setdefault("responses", {})
            responses.pop("422", None)
            if key in JSON_BODIES:
                op["requestBody"] = {
                    "required": "required" in JSON_BODIES[key],
                    "content": {"application/json": {"schema": JSON_BODIES[key]}},
                }
            elif key in FORM_BODIES:
                op["requestBody"] = {
                    "required": True,
                    "content": {"application/x-www-form-urlencoded": {"schema": FORM_BODIES[key]}},
                }
            if key in DECISIONS:
                responses["200"] = {
                    "description": "the decision (one shape for every answer, ADR 0101)",
                    "content": {"application/json": {"schema": DECISIONS[key]}},
                }
            if key in CREATED:
                ok = responses.pop("200", {"description": "created"})
                responses["201"] = {**ok, "description": CREATED[key]}
                if key == ("post", "/v1/audit/checkpoints"):
                    responses["200"] = {"description": "no new records: the latest checkpoint"}
            if path.startswith(("/v1/", "/access/")):  # OAuth answers RFC 6749 errors
                for code, text in ERRORS.items():
                    responses.setdefault(code, {"description": text, "content": error_ref})
    app.openapi_schema = schema
    return schema
